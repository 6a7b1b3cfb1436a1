package icsflow.example;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.List;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import org.apache.avro.Schema;
import org.apache.avro.SchemaNormalization;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.message.BinaryMessageEncoder;

/**
 * Encodes icsflow partner events in Java, as a partner's integration code would.
 *
 * <p>Reads the feed schemas from schemas/&lt;feed&gt;/v&lt;N&gt;.avsc, takes the example events
 * of schemas/examples/&lt;feed&gt;.jsonl, puts in each a pseudonym computed here (HMAC-SHA256 of
 * an NHS number under the ICS key), and writes each record in Avro single-object encoding
 * (Apache Avro's BinaryMessageEncoder: C3 01, the schema's fingerprint, the datum) to
 * OUT/&lt;feed&gt;-&lt;n&gt;.avro, with OUT/manifest.json listing what each file holds.
 *
 * <p>Send the bytes as the record value to your feed's topic, keyed by the patient_pseudonym,
 * with Kafka's Java client (a KafkaProducer&lt;String, byte[]&gt;).
 *
 * <p>Usage: java icsflow.example.Producer REPOSITORY OUT
 */
public final class Producer {
  private static final List<String> FEEDS = List.of("discharge", "social_care", "primary_care");
  private static final ObjectMapper JSON = new ObjectMapper();

  /** The ICS pseudonym: HMAC-SHA256 of the ten digits under the ICS key, in hex. */
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

  public static void main(String[] arguments) throws Exception {
    Path repository = Path.of(arguments[0]);
    Path out = Path.of(arguments[1]);

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

    Files.createDirectories(out);
    ArrayNode manifest = JSON.createArrayNode();
    for (String feed : FEEDS) {
      Schema schema = latestSchema(repository, feed);
      BinaryMessageEncoder<GenericRecord> encoder =
          new BinaryMessageEncoder<>(GenericData.get(), schema);
      byte[] fingerprint = SchemaNormalization.parsingFingerprint("CRC-64-AVRO", schema);
      List<String> lines =
          Files.readAllLines(repository.resolve("schemas/examples").resolve(feed + ".jsonl"));
      int index = 0;
      for (String line : lines) {
        if (line.isBlank()) {
          continue;
        }
        GenericRecord record = (GenericRecord) toAvro(JSON.readTree(line), schema);
        record.put("patient_pseudonym", pseudonym(key, nhsNumber));
        ByteBuffer encoded = encoder.encode(record);
        byte[] bytes = new byte[encoded.remaining()];
        encoded.get(bytes);
        String file = feed + "-" + index++ + ".avro";
        Files.write(out.resolve(file), bytes);
        manifest.addObject()
            .put("file", file)
            .put("feed", feed)
            .put("fingerprint", HexFormat.of().formatHex(fingerprint))
            .put("event_id", record.get("event_id").toString())
            .put("patient_pseudonym", record.get("patient_pseudonym").toString());
      }
    }
    JSON.writerWithDefaultPrettyPrinter().writeValue(out.resolve("manifest.json").toFile(), manifest);
    System.out.println("java: " + manifest.size() + " records written to " + out);
  }
}
