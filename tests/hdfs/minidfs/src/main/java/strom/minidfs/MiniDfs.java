package strom.minidfs;

import java.io.BufferedReader;
import java.io.File;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.URI;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.StandardCopyOption;
import java.security.PrivilegedExceptionAction;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.FileUtil;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.permission.FsPermission;
import org.apache.hadoop.hdfs.HdfsConfiguration;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.apache.hadoop.hdfs.MiniDFSNNTopology;
import org.apache.hadoop.minikdc.MiniKdc;
import org.apache.hadoop.security.SecurityUtil;
import org.apache.hadoop.security.UserGroupInformation;
import org.apache.hadoop.security.UserGroupInformation.AuthenticationMethod;
import org.apache.hadoop.security.ssl.KeyStoreTestUtil;
import org.apache.kerby.kerberos.kerb.client.KrbClient;
import org.apache.kerby.kerberos.kerb.type.ticket.TgtTicket;

/**
 * Runs a real Hadoop MiniDFSCluster (namenode(s) + datanode(s) in this JVM) for Strom's Rust
 * integration tests.
 *
 * <pre>
 * java -cp target/classes:$(cat target/classpath.txt) strom.minidfs.MiniDfs \
 *     --dir DIR [--datanodes N] [--ha] [--viewfs] [--kerberos] [--startup-timeout SECS]
 * </pre>
 *
 * stdout carries only the protocol: one {@code MINIDFS READY ...} (or {@code MINIDFS FAILED ...})
 * line, then one {@code OK ...}/{@code ERR ...} reply per command read from stdin. Everything else
 * (Hadoop's logs) goes to stderr. EOF on stdin shuts the cluster down and exits 0.
 */
public final class MiniDfs {

  /** The real stdout; System.out is pointed at stderr so stray prints cannot break the protocol. */
  private static final PrintStream PROTOCOL =
      new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);

  private static final String NAMESERVICE = "ns1";
  private static final String[] NN_IDS = {"nn0", "nn1"};
  private static final String MOUNT_TABLE = "cluster";
  private static final String SUPERGROUP = "supergroup";
  private static final String PROXY_PROVIDER =
      "org.apache.hadoop.hdfs.server.namenode.ha.ConfiguredFailoverProxyProvider";
  private static final String EOF = new String("<EOF>"); // identity sentinel
  private static final Object OUT_LOCK = new Object();

  // Options.
  private File dir;
  private int datanodes = 1;
  private boolean ha;
  private boolean viewfs;
  private boolean kerberos;
  private int startupTimeoutSecs = 300;

  // State.
  private File dataDir;
  private File confDir;
  private MiniKdc kdc;
  private MiniDFSCluster cluster;
  private String url;
  private String superuser;
  private int active = 0;
  private final int[] nnPorts = new int[2];
  private String hdfsPrincipal;
  private File hdfsKeytab;
  private String clientPrincipal;
  private File clientKeytab;
  private File krb5Conf;
  private File clientCcache;
  private volatile boolean ready;
  private volatile boolean stopping;
  /** The superuser's client configuration and, on a secure cluster, its login. */
  private Configuration adminConf;
  private UserGroupInformation adminUgi;

  public static void main(String[] args) {
    System.setOut(System.err);
    MiniDfs h = new MiniDfs();
    try {
      h.parse(args);
    } catch (IllegalArgumentException e) {
      reply("MINIDFS FAILED " + e.getMessage());
      System.exit(1);
    }
    BlockingQueue<String> commands = h.readStdin();
    h.startupWatchdog();
    String readyLine;
    try {
      readyLine = h.start();
    } catch (Throwable t) {
      t.printStackTrace();
      if (!h.stopping) {
        reply("MINIDFS FAILED " + describe(t));
      }
      h.haltAfter(10, 1);
      h.stopQuietly();
      System.exit(1);
      return;
    }
    h.ready = true;
    reply(readyLine);
    int rc = h.serve(commands);
    h.haltAfter(10, rc);
    h.stopQuietly();
    System.exit(rc);
  }

  // ---------------------------------------------------------------- command line

  private void parse(String[] args) {
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--dir":
          dir = new File(value(args, ++i, "--dir")).getAbsoluteFile();
          break;
        case "--datanodes":
          datanodes = intValue(args, ++i, "--datanodes");
          if (datanodes < 1 || datanodes > 16) {
            throw new IllegalArgumentException("--datanodes must be 1..16");
          }
          break;
        case "--startup-timeout":
          startupTimeoutSecs = intValue(args, ++i, "--startup-timeout");
          break;
        case "--ha":
          ha = true;
          break;
        case "--viewfs":
          viewfs = true;
          break;
        case "--kerberos":
          kerberos = true;
          break;
        default:
          throw new IllegalArgumentException("unknown argument " + args[i] + "; usage: MiniDfs"
              + " --dir DIR [--datanodes N] [--ha] [--viewfs] [--kerberos] [--startup-timeout S]");
      }
    }
    if (dir == null) {
      throw new IllegalArgumentException("--dir DIR is required");
    }
  }

  private static String value(String[] args, int i, String flag) {
    if (i >= args.length) {
      throw new IllegalArgumentException(flag + " needs a value");
    }
    return args[i];
  }

  private static int intValue(String[] args, int i, String flag) {
    try {
      return Integer.parseInt(value(args, i, flag));
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(flag + " needs an integer");
    }
  }

  // ---------------------------------------------------------------- start

  private String start() throws Exception {
    long t0 = System.nanoTime();
    dataDir = new File(dir, "data");
    confDir = new File(dir, "conf");
    FileUtil.fullyDelete(dataDir);
    FileUtil.fullyDelete(confDir);
    mkdirs(dataDir);
    mkdirs(confDir);

    if (!kerberos) {
      // Simple auth: the JVM's Hadoop user is the superuser. Default it to "hdfs" so the
      // superuser never depends on the OS account running the JVM.
      if (System.getenv("HADOOP_USER_NAME") == null
          && System.getProperty("HADOOP_USER_NAME") == null) {
        System.setProperty("HADOOP_USER_NAME", "hdfs");
      }
    }

    HdfsConfiguration conf = new HdfsConfiguration();
    conf.set("hadoop.tmp.dir", new File(dataDir, "tmp").getPath());
    conf.setBoolean("dfs.permissions.enabled", true);
    conf.set("dfs.permissions.superusergroup", SUPERGROUP);
    conf.setInt("dfs.replication", Math.min(datanodes, 3));
    conf.setInt("dfs.namenode.replication.min", 1);
    conf.setInt("dfs.namenode.safemode.extension", 0);
    conf.setInt("dfs.namenode.safemode.min.datanodes", 0);
    conf.setLong("dfs.heartbeat.interval", 1);
    conf.setBoolean("dfs.client.block.write.replace-datanode-on-failure.enable", false);
    conf.setBoolean("dfs.namenode.acls.enabled", true);
    conf.set("dfs.namenode.http-address", "127.0.0.1:0");
    conf.set("dfs.namenode.https-address", "127.0.0.1:0");
    conf.set("dfs.datanode.https.address", "127.0.0.1:0");
    conf.setBoolean("dfs.webhdfs.enabled", false);
    conf.setInt("ipc.client.connect.max.retries", 2);
    conf.setInt("ipc.client.connect.retry.interval", 200);
    if (ha) {
      conf.set("dfs.client.failover.proxy.provider." + NAMESERVICE, PROXY_PROVIDER);
      conf.set("dfs.ha.tail-edits.period", "1s");
      conf.set("dfs.ha.log-roll.period", "3600s");
    }
    if (kerberos) {
      startKdc();
      secure(conf);
    }

    MiniDFSCluster.Builder builder = new MiniDFSCluster.Builder(conf, dataDir)
        .numDataNodes(datanodes)
        .storagesPerDatanode(1)
        .checkExitOnShutdown(false)
        .waitSafeMode(true);
    if (ha) {
      builder.nnTopology(new MiniDFSNNTopology().addNameservice(
          new MiniDFSNNTopology.NSConf(NAMESERVICE)
              .addNN(new MiniDFSNNTopology.NNConf(NN_IDS[0]))
              .addNN(new MiniDFSNNTopology.NNConf(NN_IDS[1]))));
    } else {
      builder.nameNodePort(0);
    }
    cluster = builder.build();

    if (ha) {
      cluster.transitionToActive(0);
      active = 0;
      for (int i = 0; i < 2; i++) {
        nnPorts[i] = cluster.getNameNode(i).getNameNodeAddress().getPort();
      }
      url = "hdfs://" + NAMESERVICE;
    } else {
      nnPorts[0] = cluster.getNameNodePort();
      url = "hdfs://127.0.0.1:" + nnPorts[0];
    }
    cluster.waitActive();

    Configuration client = writeClientConf();
    adminConf = client;
    if (kerberos) {
      UserGroupInformation admin =
          UserGroupInformation.loginUserFromKeytabAndReturnUGI(hdfsPrincipal, hdfsKeytab.getPath());
      adminUgi = admin;
      superuser = admin.getShortUserName();
      admin.doAs((PrivilegedExceptionAction<Void>) () -> {
        prepareNamespace(client);
        return null;
      });
    } else {
      superuser = UserGroupInformation.getCurrentUser().getShortUserName();
      prepareNamespace(client);
    }

    double secs = (System.nanoTime() - t0) / 1e9;
    System.err.printf("minidfs: ready after %.1f s%n", secs);
    StringBuilder line = new StringBuilder("MINIDFS READY url=").append(url)
        .append(" conf=").append(confDir.getPath());
    if (ha) {
      line.append(" nn0=127.0.0.1:").append(nnPorts[0])
          .append(" nn1=127.0.0.1:").append(nnPorts[1])
          .append(" active=").append(NN_IDS[active]);
    }
    if (viewfs) {
      line.append(" viewfs=viewfs://").append(MOUNT_TABLE);
    }
    if (kerberos) {
      line.append(" principal=").append(clientPrincipal)
          .append(" keytab=").append(clientKeytab.getPath())
          .append(" krb5conf=").append(krb5Conf.getPath())
          .append(" ccache=").append(clientCcache.getPath())
          .append(" realm=").append(kdc.getRealm());
    }
    line.append(" superuser=").append(superuser);
    return line.toString();
  }

  /** Writes DIR/conf/{core,hdfs}-site.xml for clients and returns the same settings. */
  private Configuration writeClientConf() throws IOException {
    Map<String, String> core = new LinkedHashMap<>();
    Map<String, String> hdfs = new LinkedHashMap<>();
    core.put("fs.defaultFS", url);
    core.put("hadoop.security.authentication", kerberos ? "kerberos" : "simple");
    if (viewfs) {
      core.put("fs.viewfs.mounttable." + MOUNT_TABLE + ".link./data", url + "/data");
      core.put("fs.viewfs.mounttable." + MOUNT_TABLE + ".link./out", url + "/out");
      // hdfs-native refuses a mount table without a fallback ("No viewfs fallback mount found").
      core.put("fs.viewfs.mounttable." + MOUNT_TABLE + ".linkFallback", url + "/");
    }
    hdfs.put("dfs.replication", Integer.toString(Math.min(datanodes, 3)));
    hdfs.put("dfs.client.block.write.replace-datanode-on-failure.enable", "false");
    if (ha) {
      hdfs.put("dfs.nameservices", NAMESERVICE);
      hdfs.put("dfs.ha.namenodes." + NAMESERVICE, String.join(",", NN_IDS));
      for (int i = 0; i < 2; i++) {
        hdfs.put("dfs.namenode.rpc-address." + NAMESERVICE + "." + NN_IDS[i],
            "127.0.0.1:" + nnPorts[i]);
      }
      hdfs.put("dfs.client.failover.proxy.provider." + NAMESERVICE, PROXY_PROVIDER);
    }
    if (kerberos) {
      hdfs.put("dfs.namenode.kerberos.principal", hdfsPrincipal);
      hdfs.put("dfs.datanode.kerberos.principal", hdfsPrincipal);
      hdfs.put("dfs.block.access.token.enable", "true");
      hdfs.put("dfs.data.transfer.protection", "authentication");
    }
    write(core, new File(confDir, "core-site.xml"));
    write(hdfs, new File(confDir, "hdfs-site.xml"));

    Configuration c = new HdfsConfiguration(cluster.getConfiguration(0));
    for (Map<String, String> m : List.of(core, hdfs)) {
      m.forEach(c::set);
    }
    // The admin client must not reuse a cached FileSystem built with other settings.
    c.setBoolean("fs.hdfs.impl.disable.cache", true);
    c.setBoolean("fs.viewfs.impl.disable.cache", true);
    return c;
  }

  private static void write(Map<String, String> entries, File file) throws IOException {
    Configuration c = new Configuration(false);
    entries.forEach((k, v) -> c.set(k, v, "strom-minidfs"));
    File tmp = new File(file.getPath() + ".tmp");
    try (OutputStream os = new FileOutputStream(tmp)) {
      c.writeXml(os);
    }
    Files.move(tmp.toPath(), file.toPath(), StandardCopyOption.REPLACE_EXISTING,
        StandardCopyOption.ATOMIC_MOVE);
  }

  /** As the superuser: / 0777, /data and /out 0777, /protected 0700 with /protected/secret. */
  private void prepareNamespace(Configuration client) throws Exception {
    try (FileSystem fs = FileSystem.get(URI.create(url + "/"), client)) {
      FsPermission open = new FsPermission((short) 0777);
      fs.setPermission(new Path("/"), open);
      for (String d : new String[] {"/data", "/out"}) {
        Path p = new Path(d);
        fs.mkdirs(p);
        fs.setPermission(p, open);
      }
      Path prot = new Path("/protected");
      Path secret = new Path(prot, "secret");
      fs.mkdirs(prot);
      try (FSDataOutputStream os = fs.create(secret, true)) {
        os.write("strom-minidfs-secret\n".getBytes(StandardCharsets.UTF_8));
      }
      fs.setOwner(secret, "hdfs", SUPERGROUP);
      fs.setPermission(secret, new FsPermission((short) 0600));
      fs.setOwner(prot, "hdfs", SUPERGROUP);
      fs.setPermission(prot, new FsPermission((short) 0700));
      if (fs.getFileStatus(secret).getLen() == 0) {
        throw new IOException("/protected/secret was written empty");
      }
    }
    if (viewfs) {
      try (FileSystem vfs = FileSystem.get(URI.create("viewfs://" + MOUNT_TABLE + "/"), client)) {
        vfs.listStatus(new Path("/data"));
        vfs.listStatus(new Path("/out"));
      }
    }
  }

  // ---------------------------------------------------------------- kerberos

  private void startKdc() throws Exception {
    File kdcDir = new File(dir, "kdc");
    FileUtil.fullyDelete(kdcDir);
    mkdirs(kdcDir);
    Properties kconf = MiniKdc.createConf();
    kconf.setProperty(MiniKdc.KDC_BIND_ADDRESS, "localhost");
    kconf.setProperty(MiniKdc.KDC_PORT, "0");
    kdc = new MiniKdc(kconf, kdcDir);
    kdc.start();
    String realm = kdc.getRealm();

    hdfsKeytab = new File(dir, "hdfs.keytab");
    kdc.createPrincipal(hdfsKeytab, "hdfs/localhost", "HTTP/localhost");
    hdfsPrincipal = "hdfs/localhost@" + realm;
    clientKeytab = new File(dir, "client.keytab");
    kdc.createPrincipal(clientKeytab, "client");
    clientPrincipal = "client@" + realm;

    krb5Conf = new File(dir, "krb5.conf");
    Files.copy(kdc.getKrb5conf().toPath(), krb5Conf.toPath(), StandardCopyOption.REPLACE_EXISTING);
    System.setProperty("java.security.krb5.conf", krb5Conf.getPath());

    // A ready-made ticket cache for the client principal, so a test needs no kinit.
    clientCcache = new File(dir, "krb5cc_client");
    Files.deleteIfExists(clientCcache.toPath());
    KrbClient kc = new KrbClient(kdc.getKrb5conf().getParentFile());
    kc.setKdcRealm(realm);
    kc.setKdcHost(kdc.getHost());
    kc.setKdcTcpPort(kdc.getPort());
    kc.setAllowUdp(false);
    kc.init();
    TgtTicket tgt = kc.requestTgt(clientPrincipal, clientKeytab);
    kc.storeTicket(tgt, clientCcache);
  }

  private void secure(Configuration conf) throws Exception {
    String realm = kdc.getRealm();
    SecurityUtil.setAuthenticationMethod(AuthenticationMethod.KERBEROS, conf);
    conf.set("dfs.namenode.kerberos.principal", hdfsPrincipal);
    conf.set("dfs.namenode.keytab.file", hdfsKeytab.getPath());
    conf.set("dfs.datanode.kerberos.principal", hdfsPrincipal);
    conf.set("dfs.datanode.keytab.file", hdfsKeytab.getPath());
    conf.set("dfs.journalnode.kerberos.principal", hdfsPrincipal);
    conf.set("dfs.journalnode.keytab.file", hdfsKeytab.getPath());
    conf.set("dfs.web.authentication.kerberos.principal", "HTTP/localhost@" + realm);
    conf.set("dfs.web.authentication.kerberos.keytab", hdfsKeytab.getPath());
    conf.setBoolean("dfs.block.access.token.enable", true);
    conf.set("dfs.data.transfer.protection", "authentication");
    conf.set("dfs.http.policy", "HTTPS_ONLY");
    conf.setInt("ipc.client.connect.max.retries.on.sasl", 10);

    // SASL data transfer without privileged ports needs HTTPS_ONLY, hence keystores and
    // ssl-{server,client}.xml. Hadoop loads the latter as classpath resources.
    File sslDir = new File(dir, "ssl");
    FileUtil.fullyDelete(sslDir);
    mkdirs(sslDir);
    KeyStoreTestUtil.setupSSLConfig(sslDir.getPath(), sslDir.getPath(), conf, false);
    conf.set("dfs.client.https.keystore.resource", KeyStoreTestUtil.getClientSSLConfigFileName());
    conf.set("dfs.https.server.keystore.resource", KeyStoreTestUtil.getServerSSLConfigFileName());
    ClassLoader parent = Thread.currentThread().getContextClassLoader();
    if (parent == null) {
      parent = MiniDfs.class.getClassLoader();
    }
    Thread.currentThread().setContextClassLoader(
        new URLClassLoader(new URL[] {sslDir.toURI().toURL()}, parent));
    conf.setClassLoader(Thread.currentThread().getContextClassLoader());

    UserGroupInformation.setConfiguration(conf);
  }

  // ---------------------------------------------------------------- commands

  private BlockingQueue<String> readStdin() {
    BlockingQueue<String> q = new LinkedBlockingQueue<>();
    Thread t = new Thread(() -> {
      try (BufferedReader in =
          new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
        String line;
        while ((line = in.readLine()) != null) {
          q.add(line);
        }
      } catch (IOException e) {
        // treated as EOF
      }
      if (!ready) {
        // Nobody is listening any more: do not leave a cluster behind.
        stopping = true;
        System.err.println("minidfs: stdin closed during startup; exiting");
        Runtime.getRuntime().halt(1);
      }
      q.add(EOF);
    }, "minidfs-stdin");
    t.setDaemon(true);
    t.start();
    return q;
  }

  private int serve(BlockingQueue<String> commands) {
    while (true) {
      String line;
      try {
        line = commands.take();
      } catch (InterruptedException e) {
        return 1;
      }
      if (line == EOF) {
        System.err.println("minidfs: stdin closed; shutting down");
        return 0;
      }
      String cmd = line.trim();
      if (cmd.isEmpty()) {
        continue;
      }
      try {
        reply(handle(cmd));
      } catch (Throwable t) {
        t.printStackTrace();
        reply("ERR " + describe(t));
      }
    }
  }

  private String handle(String cmd) throws Exception {
    if (cmd.startsWith("read ")) {
      return timedRead(new Path(cmd.substring(5).trim()));
    }
    if (cmd.startsWith("put ")) {
      String[] parts = cmd.split("\\s+");
      if (parts.length != 3) {
        return "ERR usage: put LOCAL-FILE HDFS-PATH";
      }
      return put(new File(parts[1]), new Path(parts[2]));
    }
    switch (cmd) {
      case "ping":
        return "OK";
      case "failover": {
        requireHa();
        int other = 1 - active;
        if (!cluster.isNameNodeUp(other)) {
          return "ERR " + NN_IDS[other] + " is down";
        }
        cluster.transitionToStandby(active);
        cluster.transitionToActive(other);
        active = other;
        return "OK active=" + NN_IDS[active];
      }
      case "kill-active": {
        requireHa();
        int other = 1 - active;
        if (!cluster.isNameNodeUp(other)) {
          return "ERR " + NN_IDS[other] + " is down; refusing to kill the last namenode";
        }
        cluster.shutdownNameNode(active);
        cluster.transitionToActive(other);
        active = other;
        return "OK active=" + NN_IDS[active];
      }
      default:
        return "ERR unknown command: " + cmd;
    }
  }

  /**
   * Copies a local file into the cluster as the superuser (on a secure cluster the test has
   * no ticket of its own yet), readable by everyone, parents created world-writable.
   */
  private String put(File local, Path dest) throws Exception {
    PrivilegedExceptionAction<String> copy = () -> {
      try (FileSystem fs = FileSystem.get(URI.create(url + "/"), adminConf)) {
        Path parent = dest.getParent();
        if (parent != null && !fs.exists(parent)) {
          fs.mkdirs(parent);
          for (Path p = parent; p != null && !p.isRoot(); p = p.getParent()) {
            fs.setPermission(p, new FsPermission((short) 0777));
          }
        }
        fs.copyFromLocalFile(false, true, new Path(local.getAbsolutePath()), dest);
        fs.setPermission(dest, new FsPermission((short) 0644));
        return "OK " + fs.getFileStatus(dest).getLen();
      }
    };
    return adminUgi != null ? adminUgi.doAs(copy) : copy.run();
  }

  /** Reads a file with Hadoop's own client; replies with its length and the milliseconds. */
  private String timedRead(Path path) throws Exception {
    PrivilegedExceptionAction<String> read = () -> {
      try (FileSystem fs = FileSystem.get(URI.create(url + "/"), adminConf)) {
        byte[] buf = new byte[1 << 20];
        long n = 0;
        long t0 = System.nanoTime();
        try (java.io.InputStream in = fs.open(path)) {
          for (int r; (r = in.read(buf)) > 0; ) {
            n += r;
          }
        }
        return "OK bytes=" + n + " ms=" + (System.nanoTime() - t0) / 1_000_000;
      }
    };
    return adminUgi != null ? adminUgi.doAs(read) : read.run();
  }

  private void requireHa() {
    if (!ha) {
      throw new IllegalStateException("not an HA cluster (start with --ha)");
    }
  }

  // ---------------------------------------------------------------- shutdown & helpers

  private void stopQuietly() {
    stopping = true;
    if (cluster != null) {
      try {
        cluster.shutdown(true);
      } catch (Throwable t) {
        System.err.println("minidfs: cluster shutdown: " + t);
      }
    }
    if (kdc != null) {
      try {
        kdc.stop();
      } catch (Throwable t) {
        System.err.println("minidfs: kdc stop: " + t);
      }
    }
  }

  private void startupWatchdog() {
    Thread t = new Thread(() -> {
      try {
        TimeUnit.SECONDS.sleep(startupTimeoutSecs);
      } catch (InterruptedException e) {
        return;
      }
      if (!ready && !stopping) {
        stopping = true;
        reply("MINIDFS FAILED startup did not finish within " + startupTimeoutSecs + " s");
        Runtime.getRuntime().halt(1);
      }
    }, "minidfs-startup-watchdog");
    t.setDaemon(true);
    t.start();
  }

  /** Whatever shutdown hooks or stuck threads do, the JVM is gone after {@code secs}. */
  private void haltAfter(int secs, int rc) {
    Thread t = new Thread(() -> {
      try {
        TimeUnit.SECONDS.sleep(secs);
      } catch (InterruptedException e) {
        // fall through
      }
      System.err.println("minidfs: shutdown took over " + secs + " s; halting");
      Runtime.getRuntime().halt(rc);
    }, "minidfs-exit-watchdog");
    t.setDaemon(true);
    t.start();
  }

  private static void reply(String line) {
    synchronized (OUT_LOCK) {
      PROTOCOL.println(line.replace('\n', ' ').replace('\r', ' '));
      PROTOCOL.flush();
    }
  }

  /** One line: the exception chain's classes and messages. */
  private static String describe(Throwable t) {
    List<String> parts = new ArrayList<>();
    for (Throwable c = t; c != null && parts.size() < 6; c = c.getCause()) {
      String msg = c.getMessage();
      String s = c.getClass().getSimpleName() + (msg == null ? "" : ": " + msg);
      if (parts.isEmpty() || !parts.get(parts.size() - 1).contains(s)) {
        parts.add(s);
      }
      if (c.getCause() == c) {
        break;
      }
    }
    return String.join(" <- ", parts).replaceAll("\\s+", " ");
  }

  private static void mkdirs(File d) throws IOException {
    if (!d.isDirectory() && !d.mkdirs()) {
      throw new IOException("cannot create " + d);
    }
  }
}
