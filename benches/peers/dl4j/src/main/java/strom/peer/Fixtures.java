package strom.peer;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import org.datavec.api.records.reader.RecordReader;
import org.datavec.api.records.reader.impl.csv.CSVRecordReader;
import org.datavec.api.split.FileSplit;
import org.datavec.api.transform.ColumnType;
import org.datavec.api.transform.MathFunction;
import org.datavec.api.transform.MathOp;
import org.datavec.api.transform.TransformProcess;
import org.datavec.api.transform.analysis.DataAnalysis;
import org.datavec.api.transform.condition.ConditionOp;
import org.datavec.api.transform.condition.column.DoubleColumnCondition;
import org.datavec.api.transform.condition.column.StringColumnCondition;
import org.datavec.api.transform.filter.ConditionFilter;
import org.datavec.api.transform.metadata.CategoricalMetaData;
import org.datavec.api.transform.metadata.ColumnMetaData;
import org.datavec.api.transform.schema.Schema;
import org.datavec.api.transform.transform.normalize.Normalize;
import org.datavec.api.transform.transform.string.ChangeCaseStringTransform;
import org.datavec.api.transform.transform.string.ConcatenateStringColumns;
import org.datavec.api.transform.transform.time.DeriveColumnsFromTimeTransform;
import org.datavec.api.writable.DoubleWritable;
import org.datavec.api.writable.Writable;
import org.datavec.local.transforms.AnalyzeLocal;
import org.datavec.local.transforms.LocalTransformExecutor;
import org.deeplearning4j.nn.conf.ComputationGraphConfiguration;
import org.deeplearning4j.nn.conf.MultiLayerConfiguration;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.graph.vertex.GraphVertex;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.joda.time.DateTimeFieldType;
import org.joda.time.DateTimeZone;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.learning.config.Nesterovs;

/**
 * Writes fixtures that DL4J/DataVec 1.0.0-M2 themselves produce, for Strom's importer tests:
 * MultiLayerConfiguration JSON (mlp, cnn, lenet, lstm, seqclass) and DataVec TransformProcess JSON (wine,
 * mixed, strings) each with its input CSV and DataVec's own output of executing it locally.
 *
 * <pre>
 * # from the repository root:
 * benches/peers/dl4j/run.sh Fixtures tests/fixtures/dl4j
 * # i.e. java --add-opens=java.base/java.nio=ALL-UNNAMED \
 * #   -cp benches/peers/dl4j/target/classes:$(cat benches/peers/dl4j/target/classpath.txt) \
 * #   strom.peer.Fixtures OUTDIR [WINE_CSV (default assets/wine/wine_data.csv)]
 * </pre>
 */
public final class Fixtures {
  private Fixtures() {}

  static final String[] WINE_COLUMNS = {
    "alcohol", "malic_acid", "ash", "alcalinity_of_ash", "magnesium", "total_phenols",
    "flavanoids", "nonflavanoid_phenols", "proanthocyanins", "color_intensity", "hue",
    "od280_od315", "proline"
  };

  public static void main(String[] args) throws Exception {
    Bench.quietLogs();
    if (args.length < 1) {
      System.err.println("usage: Fixtures OUTDIR [WINE_CSV (default assets/wine/wine_data.csv)]");
      System.exit(2);
    }
    Path out = Path.of(args[0]);
    Files.createDirectories(out);
    Path wine = Path.of(args.length > 1 ? args[1] : "assets/wine/wine_data.csv");
    if (args.length < 2 && !Files.isRegularFile(wine)) {
      wine = Path.of("../../../assets/wine/wine_data.csv"); // run from benches/peers/dl4j
    }

    StringBuilder models = new StringBuilder();
    models.append("# name\tnumParams\tper-layer numParams (DL4J MultiLayerNetwork.init())\n");
    writeModel(out, "mlp", Models.mlp(new Adam(1e-3), 42, 0), models);
    writeModel(out, "cnn", Models.cnn(new Nesterovs(0.01, 0.9), 42, 0), models);
    writeModel(out, "lenet", Models.lenet(new Nesterovs(0.01, 0.9), 42), models);
    writeModel(out, "lstm", Models.lstm(new Adam(1e-3), 42), models);
    writeModel(out, "seqclass", Models.sequenceClassifier(new Adam(1e-3), 42), models);
    writeGraph(out, "residual", Models.residual(new Nesterovs(0.01, 0.9), 42), models);
    writeGraph(out, "merge", Models.merge(new Adam(1e-3), 42), models);
    writeGraph(out, "graph-lacks", Models.graphLacks(new Adam(1e-3), 42), models);
    write(out.resolve("models.txt"), models.toString());

    wineFixture(out, wine);
    mixedFixture(out);
    stringsFixture(out);
    write(out.resolve("roundtrip.txt"), roundTrips.toString());
    System.err.println("Fixtures: wrote " + out.toAbsolutePath());
  }

  /**
   * Writes NAME.json once DL4J's own parser has read it back equal to the configuration it was
   * written from, so that the fixture is known to load in DL4J.
   */
  static void writeRoundTripped(Path out, String name, String json, Object conf, Object back)
      throws IOException {
    if (!back.equals(conf)) {
      throw new IllegalStateException(name + ": JSON round trip changed the configuration");
    }
    write(out.resolve(name + ".json"), json + "\n");
  }

  static void writeModel(Path out, String name, MultiLayerConfiguration conf, StringBuilder models)
      throws IOException {
    String json = conf.toJson();
    writeRoundTripped(out, name, json, conf, MultiLayerConfiguration.fromJson(json));
    MultiLayerNetwork net = new MultiLayerNetwork(conf);
    net.init();
    StringBuilder per = new StringBuilder();
    for (int i = 0; i < net.getnLayers(); i++) {
      per.append(i == 0 ? "" : ",").append(net.getLayer(i).numParams());
    }
    models.append(name).append('\t').append(net.numParams()).append('\t').append(per).append('\n');
    System.err.printf("%s.json: %d layers, %d params%n", name, net.getnLayers(), net.numParams());
  }

  /**
   * A ComputationGraphConfiguration: its JSON, and DL4J's parameter counts after
   * ComputationGraph.init() (per vertex, in topological order, as name=count).
   */
  static void writeGraph(
      Path out, String name, ComputationGraphConfiguration conf, StringBuilder models)
      throws IOException {
    String json = conf.toJson();
    writeRoundTripped(out, name, json, conf, ComputationGraphConfiguration.fromJson(json));
    ComputationGraph net = new ComputationGraph(conf);
    net.init();
    StringBuilder per = new StringBuilder();
    for (int i : net.topologicalSortOrder()) {
      GraphVertex v = net.getVertices()[i];
      if (v.isInputVertex()) {
        continue;
      }
      per.append(per.length() == 0 ? "" : ",").append(v.getVertexName()).append('=')
          .append(v.numParams());
    }
    models.append(name).append('\t').append(net.numParams()).append('\t').append(per).append('\n');
    System.err.printf("%s.json: %d vertices, %d params%n", name, net.getNumLayers(),
        net.numParams());
  }

  // ------------------------------------------------------------------ wine

  static void wineFixture(Path out, Path wineCsv) throws Exception {
    List<String> lines = Files.readAllLines(wineCsv, StandardCharsets.UTF_8);
    // First line is a summary ("178,13,class_0,class_1,class_2"), not data.
    List<String> data = new ArrayList<>(lines.subList(1, lines.size()));
    data.removeIf(String::isBlank);
    Path input = out.resolve("wine-input.csv");
    write(input, String.join("\n", data) + "\n");

    Schema.Builder sb = new Schema.Builder();
    for (String c : WINE_COLUMNS) {
      sb.addColumnDouble(c);
    }
    Schema schema = sb.addColumnInteger("cultivar", 0, 2).build();

    DataAnalysis analysis;
    try (RecordReader rr = csvReader(input)) {
      analysis = AnalyzeLocal.analyze(schema, rr);
    }

    TransformProcess tp = new TransformProcess.Builder(schema)
        .removeColumns("ash", "magnesium")
        .filter(new ConditionFilter(new DoubleColumnCondition("alcohol", ConditionOp.LessThan, 11.8)))
        .doubleColumnsMathOp("flavanoid_ratio", MathOp.Divide, "flavanoids", "total_phenols")
        .doubleMathOp("proline", MathOp.Divide, 1000.0)
        .doubleMathFunction("color_intensity", MathFunction.LOG)
        .normalize("alcohol", Normalize.Standardize, analysis)
        .normalize("malic_acid", Normalize.MinMax, analysis)
        .normalize("hue", Normalize.SubtractMean, analysis)
        .conditionalReplaceValueTransform("alcalinity_of_ash", new DoubleWritable(25.0),
            new DoubleColumnCondition("alcalinity_of_ash", ConditionOp.GreaterThan, 25.0))
        .renameColumn("od280_od315", "od_ratio")
        .integerToCategorical("cultivar", Arrays.asList("class_0", "class_1", "class_2"))
        .duplicateColumn("cultivar", "cultivar_onehot")
        .categoricalToInteger("cultivar")
        .categoricalToOneHot("cultivar_onehot")
        .build();
    runTransform(out, "wine", tp, input);
  }

  // ------------------------------------------------------------------ mixed

  static final String[] CITIES = {"Berlin", "Lima", "Paris", "Tokyo"};

  static void mixedFixture(Path out) throws Exception {
    Random rnd = new Random(20240607L);
    DateTimeFormatter fmt = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss", Locale.ROOT);
    LocalDateTime base = LocalDateTime.of(2023, 1, 1, 0, 0, 0);
    StringBuilder csv = new StringBuilder();
    for (int i = 0; i < 200; i++) {
      String city = CITIES[rnd.nextInt(CITIES.length)];
      String date = base.plusMinutes(rnd.nextInt(365 * 24 * 60)).format(fmt);
      // ~10% missing temperatures; a few hot outliers to clip.
      String temp = rnd.nextInt(10) == 0 ? ""
          : String.format(Locale.ROOT, "%.1f", 15 + 10 * rnd.nextGaussian());
      String humidity = String.format(Locale.ROOT, "%.1f", 10 + 90 * rnd.nextDouble());
      int label = rnd.nextInt(2);
      csv.append(i).append(',').append(city).append(',').append(date).append(',').append(temp)
          .append(',').append(humidity).append(',').append(label).append('\n');
    }
    Path input = out.resolve("mixed-input.csv");
    write(input, csv.toString());

    Schema schema = new Schema.Builder()
        .addColumnInteger("id")
        .addColumnString("city")
        .addColumnString("date")
        .addColumnDouble("temp")
        .addColumnDouble("humidity")
        .addColumnInteger("label", 0, 1)
        .build();

    TransformProcess tp = new TransformProcess.Builder(schema)
        .removeColumns("id")
        .stringToCategorical("city", Arrays.asList(CITIES))
        .categoricalToOneHot("city")
        .stringToTimeTransform("date", "yyyy-MM-dd HH:mm:ss", DateTimeZone.UTC)
        .transform(new DeriveColumnsFromTimeTransform.Builder("date")
            .addIntegerDerivedColumn("hour", DateTimeFieldType.hourOfDay())
            .addIntegerDerivedColumn("weekday", DateTimeFieldType.dayOfWeek())
            .addIntegerDerivedColumn("month", DateTimeFieldType.monthOfYear())
            .addIntegerDerivedColumn("day_of_year", DateTimeFieldType.dayOfYear())
            .build())
        .removeColumns("date")
        // Missing temperatures are empty strings (Text "") in the Double column: replace with 15.
        // (InvalidValueColumnCondition would fit too, but DataVec M2 cannot read it back from
        // JSON: "Cannot construct instance of InvalidValueColumnCondition".)
        .conditionalReplaceValueTransform("temp", new DoubleWritable(15.0),
            new StringColumnCondition("temp", ConditionOp.Equal, ""))
        .conditionalReplaceValueTransform("temp", new DoubleWritable(35.0),
            new DoubleColumnCondition("temp", ConditionOp.GreaterThan, 35.0))
        .doubleMathOp("humidity", MathOp.Divide, 100.0)
        .filter(new ConditionFilter(new DoubleColumnCondition("humidity", ConditionOp.LessThan, 0.2)))
        .doubleColumnsMathOp("temp_x_humidity", MathOp.Multiply, "temp", "humidity")
        .integerToOneHot("label", 0, 1)
        .build();
    runTransform(out, "mixed", tp, input);
  }

  // ------------------------------------------------------------------ strings (ops Strom lacks)

  static void stringsFixture(Path out) throws Exception {
    String[] names = {"ada", "Grace", "linus", "Ken", "barbara", "Dennis", "margaret", "Alan"};
    String[] skies = {" Sunny", "rainy ", "CLOUDY", "sunny", " Rainy ", "fog"};
    Random rnd = new Random(7);
    StringBuilder csv = new StringBuilder();
    for (int i = 0; i < 24; i++) {
      csv.append(names[rnd.nextInt(names.length)]).append(',')
          .append(skies[rnd.nextInt(skies.length)]).append(',')
          .append(rnd.nextInt(100)).append('\n');
    }
    Path input = out.resolve("strings-input.csv");
    write(input, csv.toString());
    Schema schema = new Schema.Builder()
        .addColumnString("name").addColumnString("sky").addColumnInteger("score").build();
    Map<String, String> map = new HashMap<>();
    map.put("fog", "cloudy");
    TransformProcess tp = new TransformProcess.Builder(schema)
        .stringRemoveWhitespaceTransform("sky")
        .transform(new ChangeCaseStringTransform("sky", ChangeCaseStringTransform.CaseType.LOWER))
        .stringMapTransform("sky", map)
        .appendStringColumnTransform("name", "!")
        .transform(new ConcatenateStringColumns("name_sky", "_", "name", "sky"))
        .stringToCategorical("sky", Arrays.asList("sunny", "rainy", "cloudy"))
        .categoricalToInteger("sky")
        .integerMathOp("score", MathOp.Add, 1)
        .build();
    runTransform(out, "strings", tp, input);
  }

  // ------------------------------------------------------------------ shared

  static CSVRecordReader csvReader(Path csv) throws Exception {
    CSVRecordReader rr = new CSVRecordReader(0, ',');
    rr.initialize(new FileSplit(csv.toFile()));
    return rr;
  }

  /**
   * Reads the input exactly as a DataVec user would (CSVRecordReader: every value a Text
   * writable), executes the process with LocalTransformExecutor, and writes the process JSON,
   * the output CSV (Writable.toString() values) and the final schema.
   */
  static void runTransform(Path out, String name, TransformProcess tp, Path input) throws Exception {
    String json = tp.toJson();
    write(out.resolve(name + "-tp.json"), json + "\n");
    List<List<Writable>> rows = new ArrayList<>();
    try (CSVRecordReader rr = csvReader(input)) {
      while (rr.hasNext()) {
        rows.add(rr.next());
      }
    }
    List<List<Writable>> result = LocalTransformExecutor.execute(rows, tp);
    write(out.resolve(name + "-expected.csv"), toCsv(result));
    Schema fin = tp.getFinalSchema();
    StringBuilder s = new StringBuilder();
    for (int i = 0; i < fin.numColumns(); i++) {
      ColumnMetaData m = fin.getMetaData(i);
      s.append(m.getName()).append('\t').append(m.getColumnType());
      if (m.getColumnType() == ColumnType.Categorical) {
        s.append('\t').append(String.join(",", ((CategoricalMetaData) m).getStateNames()));
      }
      s.append('\n');
    }
    write(out.resolve(name + "-expected-schema.txt"), s.toString());
    System.err.printf("%s-tp.json: %d steps, %d rows in, %d rows out, %d columns out%n", name,
        tp.getActionList().size(), rows.size(), result.size(), fin.numColumns());

    // Does DataVec read its own JSON back to the same process? (Not always in 1.0.0-M2.)
    String verdict;
    try {
      TransformProcess back = TransformProcess.fromJson(json);
      verdict = toCsv(LocalTransformExecutor.execute(rows, back)).equals(toCsv(result))
          ? "ok: TransformProcess.fromJson(json) executes to the same output"
          : "DIFFERENT: TransformProcess.fromJson(json) executes to other output";
    } catch (RuntimeException e) {
      Throwable c = e;
      while (c.getCause() != null) c = c.getCause();
      String msg = String.valueOf(c.getMessage()).lines().findFirst().orElse("");
      verdict = "FAILS in DataVec 1.0.0-M2: " + c.getClass().getSimpleName() + ": " + msg;
    }
    roundTrips.append(name).append("-tp.json\t").append(verdict).append('\n');
    System.err.println("  round trip: " + verdict);
  }

  static final StringBuilder roundTrips = new StringBuilder();

  static String toCsv(List<List<Writable>> rows) {
    StringBuilder sb = new StringBuilder();
    for (List<Writable> r : rows) {
      for (int i = 0; i < r.size(); i++) {
        if (i > 0) sb.append(',');
        sb.append(r.get(i).toString());
      }
      sb.append('\n');
    }
    return sb.toString();
  }

  static void write(Path p, String s) throws IOException {
    try (PrintWriter w = new PrintWriter(p.toFile(), StandardCharsets.UTF_8)) {
      w.print(s);
    }
  }
}
