package icsflow.example;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import java.io.IOException;
import java.io.Reader;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import org.apache.avro.Schema;
import org.apache.avro.SchemaNormalization;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.message.BinaryMessageEncoder;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.errors.AuthorizationException;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Encodes icsflow partner events in Java and produces them to Kafka, as a partner's integration
 * code would.
 *
 * <p>Reads the feed schemas from schemas/&lt;feed&gt;/v&lt;N&gt;.avsc, takes the example events
 * of schemas/examples/&lt;feed&gt;.jsonl, puts in each a pseudonym computed here (HMAC-SHA256 of
 * an NHS number under the ICS key), and encodes each record in Avro single-object encoding
 * (Apache Avro's BinaryMessageEncoder: C3 01, the schema's fingerprint, the datum). Then either
 * writes each to OUT/&lt;feed&gt;-&lt;n&gt;.avro, with OUT/manifest.json listing what each file
 * holds, or produces each with Kafka's Java client to the topic icsflow's ingest reads it from,
 * keyed by its patient_pseudonym, with acks=all and idempotence, and waits for the broker to
 * acknowledge every record. See examples/README.md.
 *
 * <pre>
 * java icsflow.example.Producer REPOSITORY OUT
 * java icsflow.example.Producer REPOSITORY --bootstrap-servers HOST:PORT[,...]
 *     [--layout shared|per_partner] [--feed FEED]... [--topic FEED=TOPIC]...
 *     [--partner ODS_CODE] [--client-config FILE] [-X NAME=VALUE]...
 * </pre>
 *
 * <p>Exit status, as icsflow publish's: 0 every record acknowledged; 64 a bad command line or
 * client setting; 75 a record the broker did not take (try again later); 77 the broker does not
 * let these credentials write a topic.
 */
public final class Producer {
  private static final List<String> FEEDS = List.of("discharge", "social_care", "primary_care");
  private static final ObjectMapper JSON = new ObjectMapper();

  private static final int EXIT_USAGE = 64;
  private static final int EXIT_NOT_DELIVERED = 75;
  private static final int EXIT_NOT_AUTHORIZED = 77;

  /** One example event, encoded. */
  record Encoded(
      String feed,
      String sourceOrganisation,
      String eventId,
      String patientPseudonym,
      byte[] fingerprint,
      byte[] value) {}

  /** A command line this program cannot follow. */
  static final class UsageException extends Exception {
    UsageException(String message) {
      super(message);
    }
  }

  /** The ICS pseudonym: HMAC-SHA256 of the ten digits under the ICS key, in lower-case hex. */
  static String pseudonym(String key, String nhsNumber) throws Exception {
    String digits = nhsNumber.replace(" ", "").replace("-", "");
    Mac mac = Mac.getInstance("HmacSHA256");
    mac.init(new SecretKeySpec(key.getBytes(StandardCharsets.UTF_8), "HmacSHA256"));
    return HexFormat.of().formatHex(mac.doFinal(digits.getBytes(StandardCharsets.US_ASCII)));
  }

  /** The JSON line form as a generic Avro datum of {@code schema}. */
  static Object toAvro(JsonNode node, Schema schema) {
    switch (schema.getType()) {
      case RECORD:
        GenericData.Record record = new GenericData.Record(schema);
        for (Schema.Field field : schema.getFields()) {
          JsonNode value = node.get(field.name());
          record.put(field.name(), value == null ? null : toAvro(value, field.schema()));
        }
        return record;
      case UNION:
        if (node.isNull()) {
          return null;
        }
        for (Schema branch : schema.getTypes()) {
          // The payload: {"BranchName": {...}}.
          if (branch.getType() == Schema.Type.RECORD && node.has(branch.getName())) {
            return toAvro(node.get(branch.getName()), branch);
          }
        }
        for (Schema branch : schema.getTypes()) {
          if (branch.getType() != Schema.Type.NULL && branch.getType() != Schema.Type.RECORD) {
            return toAvro(node, branch);
          }
        }
        throw new IllegalArgumentException("no branch of " + schema + " fits");
      case ENUM:
        return new GenericData.EnumSymbol(schema, node.asText());
      case STRING:
        return node.asText();
      case LONG:
        return node.asLong();
      case INT:
        return node.asInt();
      case BOOLEAN:
        return node.asBoolean();
      default:
        throw new IllegalArgumentException("not in icsflow's schemas: " + schema.getType());
    }
  }

  static Schema latestSchema(Path repository, String feed) throws Exception {
    try (var files = Files.list(repository.resolve("schemas").resolve(feed))) {
      Path latest = files
          .filter(path -> path.getFileName().toString().matches("v[0-9]+\\.avsc"))
          .max((a, b) -> Integer.compare(version(a), version(b)))
          .orElseThrow();
      return new Schema.Parser().parse(latest.toFile());
    }
  }

  private static int version(Path path) {
    String name = path.getFileName().toString();
    return Integer.parseInt(name.substring(1, name.length() - ".avsc".length()));
  }

  /** Every example event of {@code feeds}, with the pseudonym of the first test vector. */
  static List<Encoded> encodeExamples(Path repository, Set<String> feeds) throws Exception {
    // This implementation of the pseudonym, checked against the published vectors.
    JsonNode vectors =
        JSON.readTree(repository.resolve("schemas/pseudonym-test-vectors.json").toFile()).get("vectors");
    for (JsonNode vector : vectors) {
      String computed = pseudonym(vector.get("key").asText(), vector.get("nhs_number").asText());
      if (!computed.equals(vector.get("pseudonym").asText())) {
        throw new AssertionError("pseudonym of test vector " + vector + " is " + computed);
      }
    }
    String key = vectors.get(0).get("key").asText();
    String nhsNumber = vectors.get(0).get("nhs_number").asText();

    List<Encoded> encoded = new ArrayList<>();
    for (String feed : feeds) {
      Schema schema = latestSchema(repository, feed);
      BinaryMessageEncoder<GenericRecord> encoder =
          new BinaryMessageEncoder<>(GenericData.get(), schema);
      byte[] fingerprint = SchemaNormalization.parsingFingerprint("CRC-64-AVRO", schema);
      List<String> lines =
          Files.readAllLines(repository.resolve("schemas/examples").resolve(feed + ".jsonl"));
      for (String line : lines) {
        if (line.isBlank()) {
          continue;
        }
        GenericRecord record = (GenericRecord) toAvro(JSON.readTree(line), schema);
        record.put("patient_pseudonym", pseudonym(key, nhsNumber));
        ByteBuffer bytes = encoder.encode(record);
        byte[] value = new byte[bytes.remaining()];
        bytes.get(value);
        encoded.add(new Encoded(
            feed,
            record.get("source_organisation").toString(),
            record.get("event_id").toString(),
            record.get("patient_pseudonym").toString(),
            fingerprint,
            value));
      }
    }
    return encoded;
  }

  /** Writes each record to OUT/&lt;feed&gt;-&lt;n&gt;.avro and OUT/manifest.json. */
  static void writeFiles(List<Encoded> records, Path out) throws IOException {
    Files.createDirectories(out);
    ArrayNode manifest = JSON.createArrayNode();
    Map<String, Integer> indexOfFeed = new LinkedHashMap<>();
    for (Encoded record : records) {
      int index = indexOfFeed.merge(record.feed(), 1, Integer::sum) - 1;
      String file = record.feed() + "-" + index + ".avro";
      Files.write(out.resolve(file), record.value());
      manifest.addObject()
          .put("file", file)
          .put("feed", record.feed())
          .put("fingerprint", HexFormat.of().formatHex(record.fingerprint()))
          .put("event_id", record.eventId())
          .put("patient_pseudonym", record.patientPseudonym());
    }
    JSON.writerWithDefaultPrettyPrinter().writeValue(out.resolve("manifest.json").toFile(), manifest);
    System.out.println("java: " + manifest.size() + " records written to " + out);
  }

  /** Where and how to produce, from the command line. */
  static final class KafkaOptions {
    String bootstrapServers;
    /** icsflow's topics.layout: shared or per_partner. */
    String layout = "shared";
    final Set<String> feeds = new LinkedHashSet<>();
    /** Each feed's topic, as icsflow's topics.&lt;feed&gt; names it. */
    final Map<String, String> feedTopics = new LinkedHashMap<>();
    /** On the per-partner layout, the publishing partner's ODS code; null: each record's source_organisation. */
    String partner;
    /** Client settings over this program's own, in the order given. */
    final Properties overrides = new Properties();

    KafkaOptions() {
      for (String feed : FEEDS) {
        feedTopics.put(feed, "ics." + feed + ".v1");
      }
    }

    /**
     * The topic icsflow's ingest reads a record of {@code feed} from: the feed's topic on the
     * shared layout; on the per-partner layout, the feed's topic, a dot and the publishing
     * partner's ODS code (ingest reads `^ics\.discharge\.v1\.[A-Z0-9]+$` and takes a record there
     * only in the name of that partner, its sites, or the organisations it publishes for).
     */
    String topicFor(Encoded record) {
      String feedTopic = feedTopics.get(record.feed());
      if (layout.equals("shared")) {
        return feedTopic;
      }
      return feedTopic + "." + (partner != null ? partner : record.sourceOrganisation());
    }
  }

  static KafkaOptions parseKafkaOptions(List<String> arguments) throws UsageException, IOException {
    KafkaOptions options = new KafkaOptions();
    for (int index = 0; index < arguments.size(); index++) {
      String flag = arguments.get(index);
      if (index + 1 >= arguments.size()) {
        throw new UsageException(flag + " needs a value");
      }
      String value = arguments.get(++index);
      switch (flag) {
        case "--bootstrap-servers", "-b" -> options.bootstrapServers = value;
        case "--layout" -> {
          if (!value.equals("shared") && !value.equals("per_partner")) {
            throw new UsageException("--layout is shared or per_partner, as icsflow's topics.layout");
          }
          options.layout = value;
        }
        case "--feed" -> options.feeds.add(feed(value));
        case "--topic" -> {
          String[] pair = nameValue(flag, value);
          options.feedTopics.put(feed(pair[0]), pair[1]);
        }
        case "--partner" -> {
          // The suffix icsflow's ingest subscribes to on the per-partner layout.
          if (!value.matches("[A-Z0-9]{3,6}")) {
            throw new UsageException("--partner is your ODS code in capitals, for example RVW");
          }
          options.partner = value;
        }
        case "--client-config" -> {
          try (Reader reader = Files.newBufferedReader(Path.of(value), StandardCharsets.UTF_8)) {
            options.overrides.load(reader);
          }
        }
        case "-X" -> {
          String[] pair = nameValue(flag, value);
          options.overrides.setProperty(pair[0], pair[1]);
        }
        default -> throw new UsageException("unknown flag " + flag);
      }
    }
    if (options.bootstrapServers == null) {
      throw new UsageException("--bootstrap-servers is required");
    }
    if (options.feeds.isEmpty()) {
      options.feeds.addAll(FEEDS);
    }
    return options;
  }

  private static String feed(String name) throws UsageException {
    if (!FEEDS.contains(name)) {
      throw new UsageException(name + " is not a feed: " + String.join(", ", FEEDS));
    }
    return name;
  }

  private static String[] nameValue(String flag, String value) throws UsageException {
    int equals = value.indexOf('=');
    if (equals <= 0) {
      throw new UsageException(flag + " takes NAME=VALUE");
    }
    return new String[] {value.substring(0, equals), value.substring(equals + 1)};
  }

  /**
   * The producer settings icsflow's records need. The key is the patient_pseudonym, so that
   * Kafka's default partitioner (murmur2 of the key, as icsflow publish's) puts a patient's
   * records in one partition, in the order they were sent. acks=all and idempotence, so that an
   * acknowledged record is on every in-sync replica and a retry never writes it twice or out of
   * order.
   */
  static Properties producerSettings(KafkaOptions options) throws UsageException {
    Properties settings = new Properties();
    settings.setProperty(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, options.bootstrapServers);
    settings.setProperty(ProducerConfig.ACKS_CONFIG, "all");
    settings.setProperty(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
    settings.setProperty(ProducerConfig.CLIENT_ID_CONFIG, "icsflow-example-java");
    // Give up on an unreachable broker within half a minute, as icsflow publish does.
    settings.setProperty(ProducerConfig.MAX_BLOCK_MS_CONFIG, "30000");
    settings.setProperty(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "15000");
    settings.setProperty(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "30000");
    // The connection (SASL, TLS) and any tuning, from --client-config and -X.
    settings.putAll(options.overrides);
    String acks = settings.getProperty(ProducerConfig.ACKS_CONFIG);
    if (!acks.equals("all") && !acks.equals("-1")) {
      throw new UsageException("acks must stay all: a record acknowledged by one replica can be lost");
    }
    if (!settings.getProperty(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG).equals("true")) {
      throw new UsageException("enable.idempotence must stay true: a retry could write a record twice or out of order");
    }
    for (String name : List.of(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG,
        ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ProducerConfig.PARTITIONER_CLASS_CONFIG)) {
      if (settings.containsKey(name)) {
        throw new UsageException(name + " is this program's: the key is the pseudonym's text, the value the record's bytes, the partition murmur2's");
      }
    }
    return settings;
  }

  /** Produces every record and waits for the broker's answer to each; the exit status. */
  static int produce(List<Encoded> records, KafkaOptions options) throws UsageException {
    Properties settings = producerSettings(options);
    List<Future<RecordMetadata>> deliveries = new ArrayList<>();
    Map<String, Integer> perTopic = new LinkedHashMap<>();
    int notDelivered = 0;
    boolean notAuthorized = false;
    KafkaProducer<String, byte[]> producer;
    try {
      producer = new KafkaProducer<>(settings, new StringSerializer(), new ByteArraySerializer());
    } catch (KafkaException refused) {
      throw new UsageException("the Kafka client refuses the settings: " + refused.getMessage());
    }
    try (producer) {
      for (Encoded record : records) {
        String topic = options.topicFor(record);
        // The key: the pseudonym's 64 lower-case hexadecimal characters, in UTF-8.
        deliveries.add(producer.send(new ProducerRecord<>(topic, record.patientPseudonym(), record.value())));
      }
      producer.flush();
      for (int index = 0; index < records.size(); index++) {
        Encoded record = records.get(index);
        String topic = options.topicFor(record);
        try {
          deliveries.get(index).get();
          perTopic.merge(topic, 1, Integer::sum);
        } catch (ExecutionException failure) {
          notDelivered++;
          notAuthorized |= failure.getCause() instanceof AuthorizationException;
          System.err.println("java: event " + record.eventId() + " not delivered to " + topic + ": "
              + failure.getCause().getMessage());
        } catch (InterruptedException interrupted) {
          Thread.currentThread().interrupt();
          return EXIT_NOT_DELIVERED;
        }
      }
    }
    int produced = records.size() - notDelivered;
    StringBuilder summary = new StringBuilder("java: " + produced + " of " + records.size()
        + " records produced and acknowledged");
    perTopic.forEach((topic, count) -> summary.append("; ").append(count).append(" to ").append(topic));
    System.out.println(summary);
    if (notDelivered == 0) {
      return 0;
    }
    return notAuthorized ? EXIT_NOT_AUTHORIZED : EXIT_NOT_DELIVERED;
  }

  private static final String USAGE = "usage: java icsflow.example.Producer REPOSITORY OUT\n"
      + "       java icsflow.example.Producer REPOSITORY --bootstrap-servers HOST:PORT[,...]\n"
      + "           [--layout shared|per_partner] [--feed FEED]... [--topic FEED=TOPIC]...\n"
      + "           [--partner ODS_CODE] [--client-config FILE] [-X NAME=VALUE]...\n"
      + "See examples/README.md.";

  public static void main(String[] arguments) throws Exception {
    if (List.of(arguments).contains("--help") || List.of(arguments).contains("-h")) {
      System.out.println(USAGE);
      return;
    }
    if (arguments.length < 2) {
      System.err.println(USAGE);
      System.exit(EXIT_USAGE);
    }
    Path repository = Path.of(arguments[0]);
    if (arguments.length == 2 && !arguments[1].startsWith("-")) {
      writeFiles(encodeExamples(repository, new LinkedHashSet<>(FEEDS)), Path.of(arguments[1]));
      return;
    }
    try {
      KafkaOptions options = parseKafkaOptions(List.of(arguments).subList(1, arguments.length));
      System.exit(produce(encodeExamples(repository, options.feeds), options));
    } catch (UsageException usage) {
      System.err.println("java: " + usage.getMessage());
      System.exit(EXIT_USAGE);
    }
  }
}
