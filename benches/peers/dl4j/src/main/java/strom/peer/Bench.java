package strom.peer;

import java.io.DataInputStream;
import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicLong;
import java.util.zip.GZIPInputStream;
import org.deeplearning4j.datasets.iterator.ExistingDataSetIterator;
import org.deeplearning4j.nn.api.Model;
import org.deeplearning4j.nn.conf.MultiLayerConfiguration;
import org.deeplearning4j.nn.conf.WorkspaceMode;
import org.deeplearning4j.nn.multilayer.MultiLayerNetwork;
import org.deeplearning4j.optimize.api.BaseTrainingListener;
import org.deeplearning4j.optimize.solvers.accumulation.EncodedGradientsAccumulator;
import org.deeplearning4j.optimize.solvers.accumulation.EncodingHandler;
import org.deeplearning4j.optimize.solvers.accumulation.encoding.ResidualPostProcessor;
import org.deeplearning4j.optimize.solvers.accumulation.encoding.ThresholdAlgorithm;
import org.deeplearning4j.optimize.solvers.accumulation.encoding.residual.ResidualClippingPostProcessor;
import org.deeplearning4j.optimize.solvers.accumulation.encoding.threshold.AdaptiveThresholdAlgorithm;
import org.deeplearning4j.parallelism.ParallelWrapper;
import org.nd4j.evaluation.classification.Evaluation;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.DataSet;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.learning.config.IUpdater;
import org.nd4j.linalg.learning.config.Nesterovs;

/**
 * DL4J peer benchmark: trains Strom's `mlp` or `cnn` preset on Fashion-MNIST IDX files with
 * MultiLayerNetwork.fit (single) or ParallelWrapper in shared-gradients mode (parallel), and writes
 * one JSON object of measurements.
 *
 * <pre>
 * java -cp target/classes:$(cat target/classpath.txt) strom.peer.Bench --case mlp --mode single \
 *   --train /usr/share/datasets/fashion-mnist/train --test /usr/share/datasets/fashion-mnist/t10k \
 *   --epochs 1 --batch 64 --workers 4 --updater adam --lr 1e-3 --threshold 1e-3 --json out.json
 * </pre>
 */
public final class Bench {
  // Static so that clones of the listener made by ParallelWrapper's workers count here too.
  static final AtomicLong FIRST_ITER_DONE_MS = new AtomicLong(-1);
  static final AtomicLong ITERATIONS = new AtomicLong();
  static final AtomicLong MESSAGES = new AtomicLong();
  static final AtomicLong MESSAGE_BYTES = new AtomicLong();
  static final AtomicLong MESSAGE_ELEMENTS = new AtomicLong();

  private Bench() {}

  /** Records the wall-clock time the first fit iteration finished, and counts iterations. */
  public static final class FirstIteration extends BaseTrainingListener implements Cloneable {
    @Override
    public void iterationDone(Model model, int iteration, int epoch) {
      FIRST_ITER_DONE_MS.compareAndSet(-1, System.currentTimeMillis());
      ITERATIONS.incrementAndGet();
    }

    @Override
    public FirstIteration clone() {
      return new FirstIteration();
    }
  }

  /**
   * DL4J's own EncodingHandler, unchanged except that every encoded update a worker broadcasts
   * (threshold- or bitmap-encoded INDArray) is counted: messages and their size in bytes.
   */
  static final class CountingEncodingHandler extends EncodingHandler {
    CountingEncodingHandler(ThresholdAlgorithm t, ResidualPostProcessor r, Integer boundary) {
      super(t, r, boundary, false);
    }

    @Override
    protected void sendMessage(INDArray message, int iterationNumber, int epochNumber) {
      MESSAGES.incrementAndGet();
      MESSAGE_ELEMENTS.addAndGet(message.length());
      MESSAGE_BYTES.addAndGet(message.length() * message.dataType().width());
      super.sendMessage(message, iterationNumber, epochNumber);
    }
  }

  /**
   * Pre-batched in-memory data. ExistingDataSetIterator says asyncSupported() == false, which
   * would make ParallelWrapper skip its prefetch buffer (and fit skip its AsyncDataSetIterator);
   * say true so that both prefetch as they do for DL4J's own iterators.
   */
  static final class Batches extends ExistingDataSetIterator {
    Batches(List<DataSet> batches) {
      super(batches);
    }

    @Override
    public boolean asyncSupported() {
      return true;
    }
  }

  static final class Args {
    String kase = "mlp";
    String mode = "single";
    String train;
    String test;
    int epochs = 1;
    int batch = 64;
    int workers = 4;
    String updater = "adam";
    double lr = 1e-3;
    double threshold = 1e-3;
    double l2 = 0;
    long seed = 42;
    int threads = -1;
    int prefetch = 2;
    boolean countBytes = true;
    int limitTrain = -1;
    String json;
  }

  static void usage(String why) {
    System.err.println("Bench: " + why);
    System.err.println("usage: Bench --case {mlp,cnn} --mode {single,parallel} --train PREFIX"
        + " --test PREFIX [--epochs N] [--batch B] [--workers W] [--updater {adam,nesterov}]"
        + " [--lr F] [--threshold T] [--l2 F] [--seed S] [--threads N] [--prefetch N]"
        + " [--limit-train N] [--no-count-bytes] --json OUT.json");
    System.err.println("  PREFIX: PREFIX-images-idx3-ubyte[.gz] and PREFIX-labels-idx1-ubyte[.gz]");
    System.exit(2);
  }

  static Args parse(String[] a) {
    Args r = new Args();
    for (int i = 0; i < a.length; i++) {
      String k = a[i];
      if (k.equals("--no-count-bytes")) {
        r.countBytes = false;
        continue;
      }
      if (k.equals("-h") || k.equals("--help")) {
        usage("help");
      }
      if (i + 1 >= a.length) {
        usage("missing value for " + k);
      }
      String v = a[++i];
      switch (k) {
        case "--case": r.kase = v; break;
        case "--mode": r.mode = v; break;
        case "--train": r.train = v; break;
        case "--test": r.test = v; break;
        case "--epochs": r.epochs = Integer.parseInt(v); break;
        case "--batch": r.batch = Integer.parseInt(v); break;
        case "--workers": r.workers = Integer.parseInt(v); break;
        case "--updater": r.updater = v; break;
        case "--lr": r.lr = Double.parseDouble(v); break;
        case "--threshold": r.threshold = Double.parseDouble(v); break;
        case "--l2": r.l2 = Double.parseDouble(v); break;
        case "--seed": r.seed = Long.parseLong(v); break;
        case "--threads": r.threads = Integer.parseInt(v); break;
        case "--prefetch": r.prefetch = Integer.parseInt(v); break;
        case "--limit-train": r.limitTrain = Integer.parseInt(v); break;
        case "--json": r.json = v; break;
        default: usage("unknown option " + k);
      }
    }
    if (!r.kase.equals("mlp") && !r.kase.equals("cnn")) usage("--case must be mlp or cnn");
    if (!r.mode.equals("single") && !r.mode.equals("parallel")) usage("--mode: single|parallel");
    if (!r.updater.equals("adam") && !r.updater.equals("nesterov")) usage("--updater: adam|nesterov");
    if (r.train == null || r.test == null) usage("--train and --test are required");
    if (r.json == null) usage("--json is required");
    if (r.epochs < 1 || r.batch < 1 || r.workers < 1) usage("epochs, batch, workers must be >= 1");
    return r;
  }

  // ---------------------------------------------------------------- IDX reading

  static InputStream open(String prefix, String kind) throws IOException {
    for (String name : new String[] {prefix + "-" + kind + ".gz", prefix + "-" + kind}) {
      File f = new File(name);
      if (f.isFile()) {
        InputStream in = new java.io.BufferedInputStream(new FileInputStream(f), 1 << 16);
        return name.endsWith(".gz") ? new GZIPInputStream(in, 1 << 16) : in;
      }
    }
    throw new IOException("no " + prefix + "-" + kind + "[.gz]");
  }

  /** Features [n,784] (or [n,1,28,28] when {@code nchw}) scaled to [0,1], one-hot labels [n,10]. */
  static DataSet readIdx(String prefix, boolean nchw, int limit) throws IOException {
    float[] x;
    int n;
    int rows;
    int cols;
    try (DataInputStream in = new DataInputStream(open(prefix, "images-idx3-ubyte"))) {
      int magic = in.readInt();
      if (magic != 0x00000803) throw new IOException(prefix + ": bad image magic " + magic);
      n = in.readInt();
      rows = in.readInt();
      cols = in.readInt();
      if (limit > 0) n = Math.min(n, limit);
      byte[] raw = new byte[n * rows * cols];
      in.readFully(raw);
      x = new float[raw.length];
      for (int i = 0; i < raw.length; i++) x[i] = (raw[i] & 0xff) / 255.0f;
    }
    float[] y = new float[n * 10];
    try (DataInputStream in = new DataInputStream(open(prefix, "labels-idx1-ubyte"))) {
      int magic = in.readInt();
      if (magic != 0x00000801) throw new IOException(prefix + ": bad label magic " + magic);
      int m = in.readInt();
      if (m < n) throw new IOException(prefix + ": " + m + " labels for " + n + " images");
      byte[] raw = new byte[n];
      in.readFully(raw);
      for (int i = 0; i < n; i++) {
        int c = raw[i] & 0xff;
        if (c > 9) throw new IOException(prefix + ": label " + c + " out of range");
        y[i * 10 + c] = 1f;
      }
    }
    long[] shape = nchw ? new long[] {n, 1, rows, cols} : new long[] {n, (long) rows * cols};
    return new DataSet(Nd4j.create(x, shape, 'c'), Nd4j.create(y, new long[] {n, 10}, 'c'));
  }

  // ---------------------------------------------------------------- main

  /** slf4j-simple at WARN unless -Dorg.slf4j.simpleLogger.defaultLogLevel=... says otherwise. */
  static void quietLogs() {
    if (System.getProperty("org.slf4j.simpleLogger.defaultLogLevel") == null) {
      System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
    }
    System.setProperty("org.slf4j.simpleLogger.logFile", "System.err");
  }

  public static void main(String[] argv) throws Exception {
    final long jvmStart = ManagementFactory.getRuntimeMXBean().getStartTime();
    quietLogs();
    Args a = parse(argv);
    boolean parallel = a.mode.equals("parallel");
    int cores = Runtime.getRuntime().availableProcessors();
    String omp = System.getenv("OMP_NUM_THREADS");
    int threads = a.threads;
    String threadsFrom = "--threads";
    if (threads <= 0 && omp != null && !omp.isBlank()) {
      threads = Integer.parseInt(omp.trim());
      threadsFrom = "OMP_NUM_THREADS";
    }
    if (threads <= 0) {
      // DL4J's advice for ParallelWrapper on CPU: split the cores between the workers.
      threads = parallel ? Math.max(1, cores / a.workers) : cores;
      threadsFrom = parallel ? "cores/workers" : "cores";
    }
    Nd4j.getEnvironment().setMaxThreads(threads);
    Nd4j.getEnvironment().setMaxMasterThreads(threads);
    Nd4j.factory().blas().setMaxThreads(threads);
    Properties env = Nd4j.getExecutioner().getEnvironmentInformation();
    String backend = String.valueOf(env.getOrDefault("backend", Nd4j.getBackend().getClass().getSimpleName()));
    String blas = String.valueOf(env.getOrDefault("blas.vendor", "?"));
    System.err.printf(Locale.ROOT,
        "nd4j: backend=%s blas=%s cores=%s; threads %d (from %s): env.maxThreads=%d"
            + " env.maxMasterThreads=%d blas.maxThreads=%d (info omp.threads=%s)%n",
        backend, blas, env.get("cores"), threads, threadsFrom, Nd4j.getEnvironment().maxThreads(),
        Nd4j.getEnvironment().maxMasterThreads(), Nd4j.factory().blas().getMaxThreads(),
        env.get("omp.threads"));

    boolean nchw = a.kase.equals("cnn");
    long t0 = System.nanoTime();
    DataSet train = readIdx(a.train, nchw, a.limitTrain);
    DataSet test = readIdx(a.test, nchw, -1);
    double loadS = (System.nanoTime() - t0) / 1e9;
    int nTrain = train.numExamples();
    int nTest = test.numExamples();

    IUpdater updater = a.updater.equals("adam") ? new Adam(a.lr) : new Nesterovs(a.lr, 0.9);
    MultiLayerConfiguration conf = nchw ? Models.cnn(updater, a.seed, a.l2) : Models.mlp(updater, a.seed, a.l2);
    MultiLayerNetwork net = new MultiLayerNetwork(conf);
    net.init();
    long numParams = net.numParams();
    System.err.printf(Locale.ROOT, "dl4j: case=%s numParams=%d train=%d test=%d (loaded in %.2fs)%n",
        a.kase, numParams, nTrain, nTest, loadS);

    ParallelWrapper pw = null;
    String pwMode = null;
    if (parallel) {
      ThresholdAlgorithm thr = new AdaptiveThresholdAlgorithm(a.threshold);
      ResidualPostProcessor rpp = new ResidualClippingPostProcessor(5, 5);
      ParallelWrapper.Builder<MultiLayerNetwork> b = new ParallelWrapper.Builder<>(net)
          .workers(a.workers)
          .prefetchBuffer(a.prefetch)
          .workspaceMode(WorkspaceMode.ENABLED)
          .reportScoreAfterAveraging(false);
      if (a.countBytes) {
        // Exactly what ParallelWrapper.Builder.build() makes for SHARED_GRADIENTS in 1.0.0-M2
        // (boundary numParams/16+5, encoder memory boundary*4*(workers+3), queue workers+2),
        // but with a handler that counts the encoded messages. CUSTOM mode then uses the same
        // SymmetricTrainerContext as SHARED_GRADIENTS.
        int boundary = (int) (numParams / 16 + 5);
        long memory = (long) boundary * 4 * (a.workers + 3);
        EncodedGradientsAccumulator acc = new EncodedGradientsAccumulator(a.workers,
            new CountingEncodingHandler(thr, rpp, boundary), memory, a.workers + 2,
            Integer.MAX_VALUE, false);
        b.trainingMode(ParallelWrapper.TrainingMode.CUSTOM).gradientsAccumulator(acc);
        pwMode = "CUSTOM (SHARED_GRADIENTS accumulator + counting EncodingHandler)";
      } else {
        b.trainingMode(ParallelWrapper.TrainingMode.SHARED_GRADIENTS)
            .thresholdAlgorithm(thr)
            .residualPostProcessor(rpp);
        pwMode = "SHARED_GRADIENTS";
      }
      pw = b.build();
      pw.setListeners(new FirstIteration());
    } else {
      net.setListeners(new FirstIteration());
    }

    List<Map<String, Object>> perEpoch = new ArrayList<>();
    double fitS = 0;
    long examples = 0;
    for (int e = 0; e < a.epochs; e++) {
      train.shuffle(a.seed + e);
      List<DataSet> batches = train.batchBy(a.batch);
      Batches it = new Batches(batches);
      long s = System.nanoTime();
      if (parallel) {
        pw.fit(it);
      } else {
        net.fit(it);
      }
      double dt = (System.nanoTime() - s) / 1e9;
      fitS += dt;
      examples += nTrain;
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("epoch", e + 1);
      m.put("fit_s", dt);
      m.put("samples_per_s", nTrain / dt);
      perEpoch.add(m);
      System.err.printf(Locale.ROOT, "epoch %d: %.2fs, %.0f samples/s%n", e + 1, dt, nTrain / dt);
    }
    if (pw != null) {
      // Evaluation below uses `net`, the model handed to ParallelWrapper, which holds the
      // trained parameters once fit returns (the workers' replicas are gone by then).
      pw.shutdown();
    }

    long ev0 = System.nanoTime();
    Evaluation ev = net.evaluate(new ExistingDataSetIterator(test.batchBy(1000)));
    double evalS = (System.nanoTime() - ev0) / 1e9;
    double acc = ev.accuracy();

    long hwmKb = -1;
    long rssKb = -1;
    for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
      if (line.startsWith("VmHWM:")) hwmKb = Long.parseLong(line.replaceAll("[^0-9]", ""));
      if (line.startsWith("VmRSS:")) rssKb = Long.parseLong(line.replaceAll("[^0-9]", ""));
    }
    long firstMs = FIRST_ITER_DONE_MS.get();

    Map<String, Object> out = new LinkedHashMap<>();
    out.put("peer", "dl4j");
    out.put("dl4j_version", "1.0.0-M2");
    out.put("java_version", System.getProperty("java.version"));
    out.put("case", a.kase);
    out.put("mode", a.mode);
    out.put("train", a.train);
    out.put("test", a.test);
    out.put("n_train", nTrain);
    out.put("n_test", nTest);
    out.put("epochs", a.epochs);
    out.put("batch", a.batch);
    out.put("workers", parallel ? a.workers : 1);
    out.put("updater", a.updater);
    out.put("lr", a.lr);
    out.put("l2", a.l2);
    out.put("seed", a.seed);
    out.put("threshold", parallel ? a.threshold : null);
    out.put("parallel_wrapper", parallel ? pwSettings(a, pwMode) : null);
    out.put("backend", backend);
    out.put("blas_vendor", blas);
    out.put("threads", threads);
    out.put("threads_from", threadsFrom);
    out.put("cores", cores);
    out.put("num_params", numParams);
    out.put("data_load_s", loadS);
    out.put("jvm_start_to_first_iter_s", firstMs < 0 ? null : (firstMs - jvmStart) / 1000.0);
    out.put("fit_wall_s", fitS);
    out.put("examples_trained", examples);
    out.put("iterations", ITERATIONS.get());
    out.put("samples_per_s", examples / fitS);
    out.put("per_epoch", perEpoch);
    out.put("eval_s", evalS);
    out.put("test_accuracy", acc);
    out.put("peak_rss_bytes", hwmKb < 0 ? null : hwmKb * 1024);
    out.put("peak_rss_mib", hwmKb < 0 ? null : hwmKb / 1024.0);
    out.put("final_rss_bytes", rssKb < 0 ? null : rssKb * 1024);
    // DL4J itself exposes no byte or message counters for ParallelWrapper; these come from the
    // counting EncodingHandler (null when not counted). In-process, nothing crosses a network:
    // each message is the encoded update one worker hands to the other workers' queues.
    boolean counted = parallel && a.countBytes;
    out.put("dl4j_reported_bytes", null);
    out.put("encoded_messages", counted ? MESSAGES.get() : null);
    out.put("encoded_bytes", counted ? MESSAGE_BYTES.get() : null);
    out.put("encoded_elements", counted ? MESSAGE_ELEMENTS.get() : null);
    out.put("dense_bytes_per_message", numParams * 4);
    String json = Json.write(out);
    try (PrintWriter w = new PrintWriter(a.json, StandardCharsets.UTF_8)) {
      w.println(json);
    }
    System.out.printf(Locale.ROOT,
        "dl4j %s %s workers=%d batch=%d epochs=%d: %.0f samples/s, acc=%.4f, first iter %.2fs after JVM start,"
            + " peak RSS %.0f MiB, params=%d%s%n",
        a.kase, a.mode, parallel ? a.workers : 1, a.batch, a.epochs, examples / fitS, acc,
        firstMs < 0 ? Double.NaN : (firstMs - jvmStart) / 1000.0, hwmKb / 1024.0, numParams,
        counted ? String.format(Locale.ROOT, ", %d msgs %.1f MiB encoded", MESSAGES.get(),
            MESSAGE_BYTES.get() / 1048576.0) : "");
    // nd4j leaves non-daemon threads behind; do not wait for them.
    System.exit(0);
  }

  static Map<String, Object> pwSettings(Args a, String pwMode) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("training_mode", pwMode);
    m.put("workers", a.workers);
    m.put("prefetch_buffer", a.prefetch);
    m.put("workspace_mode", "ENABLED");
    m.put("threshold_algorithm", "AdaptiveThresholdAlgorithm(" + a.threshold + ")");
    m.put("residual_post_processor", "ResidualClippingPostProcessor(5.0, 5)");
    return m;
  }
}
