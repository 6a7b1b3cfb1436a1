package org.icsflow.bench;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.dataformat.toml.TomlMapper;
import org.apache.avro.Schema;
import org.apache.avro.SchemaCompatibility;
import org.apache.avro.SchemaNormalization;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.util.Utf8;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serializer;

/**
 * The partner side of icsflow's job, as its ingest role does it: a partner
 * record's framing, its writer schema, the Avro datum, every validation of
 * icsflow-core, and the ICS's reference data; out comes a {@link
 * JourneyEvent} (what the journey needs of the event) or a {@link Rejected}
 * with icsflow's reason code.
 *
 * <p>Ported from crates/icsflow-avro/src/codec.rs and wire.rs, and from
 * crates/icsflow-core/src/{event,identifiers,codes,time,nhs_number,reference}.rs;
 * the rule of each check and the order they run in are theirs, so that a
 * record gets the reason it gets from icsflow. What differs is said where it
 * differs (and in README.md).
 */
final class Events {
    private Events() {}

    /** The three partner feeds, in the order icsflow lists them. */
    enum Feed {
        DISCHARGE("discharge"),
        SOCIAL_CARE("social_care"),
        PRIMARY_CARE("primary_care");

        final String label;

        Feed(String label) {
            this.label = label;
        }
    }

    /** icsflow's rejection reasons (icsflow_core::RejectReason), by code. */
    enum Reason {
        MALFORMED("malformed"),
        UNKNOWN_SCHEMA("unknown_schema"),
        INCOMPATIBLE_SCHEMA("incompatible_schema"),
        INVALID_FIELD("invalid_field"),
        IDENTIFIABLE_DATA("identifiable_data"),
        TIMESTAMP_OUT_OF_RANGE("timestamp_out_of_range"),
        ORGANISATION_MISMATCH("organisation_mismatch");

        final String code;

        Reason(String code) {
            this.code = code;
        }
    }

    /**
     * A record that does not become an event: its reason and, when one
     * field is at fault, that field's schema name (never its value).
     * Thrown per bad record, so it carries no stack trace.
     */
    static final class Rejected extends Exception {
        private static final long serialVersionUID = 1L;
        final Reason reason;
        final String field;

        Rejected(Reason reason, String field) {
            super(reason.code + (field == null ? "" : " in field " + field), null, false, false);
            this.reason = reason;
            this.field = field;
        }

        static Rejected invalid(String field) {
            return new Rejected(Reason.INVALID_FIELD, field);
        }
    }

    /**
     * What the journey engine keeps of an event, as icsflow's StoredKind
     * (crates/icsflow-engine/src/journey.rs) has it: the kinds in the same
     * order, each with up to three details. An absent optional detail is
     * {@link #NONE}, which orders before every value (Rust's None < Some),
     * so comparing two versions of an event by value orders them as icsflow
     * does.
     */
    static final class Kind {
        private Kind() {}

        static final int NONE = -1;

        /** d1 emergency (0/1), d2 age in years, d3 bed type ordinal or NONE; the event's place. */
        static final int ADMITTED = 0;
        static final int ADMISSION_CANCELLED = 1;
        static final int CRITERIA_MET = 2;
        /** d1 the Discharge Ready Date (days since 1970) or NONE. */
        static final int CRITERIA_NOT_MET = 3;
        /** d1 pathway ordinal. */
        static final int PATHWAY_ASSIGNED = 4;
        /** d1 delay reason family ordinal. */
        static final int DELAY_REASON = 5;
        /** d1 destination ordinal, d2 pathway ordinal. */
        static final int DISCHARGED = 6;
        static final int DISCHARGE_CANCELLED = 7;
        /** d1 service type ordinal, d2 service component ordinal. */
        static final int SERVICE_STARTED = 8;
        /** d1 end reason ordinal. */
        static final int SERVICE_ENDED = 9;
        static final int OTHER_SOCIAL_CARE = 10;
        /** d1 attended (0/1). */
        static final int CONTACT = 11;
        static final int OTHER_PRIMARY_CARE = 12;
        /** d1 the date of death (days since 1970). */
        static final int DEATH_NOTIFIED = 13;

        static Feed feed(int kind) {
            if (kind <= DISCHARGE_CANCELLED) {
                return Feed.DISCHARGE;
            }
            return kind <= OTHER_SOCIAL_CARE ? Feed.SOCIAL_CARE : Feed.PRIMARY_CARE;
        }
    }

    /** What ingest forwards: an accepted event, or a dead letter. */
    sealed interface Routed permits JourneyEvent, DeadLetter {}

    /**
     * A refused partner record, written to the dead-letter topic as icsflow
     * writes it: an empty value, the reason and the record's coordinates in
     * headers (set by the processor), no byte of the partner's record.
     */
    record DeadLetter(Rejected rejection) implements Routed {}

    /**
     * A validated event, counted by the reference data (the place outside
     * the ICS as {@code out_of_area}, a trust's site as the trust), keyed by
     * its patient's pseudonym on the repartition topic; what the journey
     * engine needs of it and nothing more.
     *
     * @param reference the episode (spell) reference's 32 bytes, or null
     * @param hasCorrects whether it corrects an event ({@code correctsHi/Lo})
     */
    record JourneyEvent(
            byte[] patient,
            long idHi,
            long idLo,
            long occurredAtMillis,
            long recordedAtMillis,
            String organisation,
            String place,
            byte[] reference,
            boolean hasCorrects,
            long correctsHi,
            long correctsLo,
            int kind,
            int d1,
            int d2,
            int d3)
            implements Routed {

        Feed feed() {
            return Kind.feed(kind);
        }
    }

    /**
     * The repartition topic's value format for {@link JourneyEvent}: a
     * fixed binary layout (about 90 bytes; the patient is the record's key,
     * not repeated here).
     */
    static final class JourneyEventSerde implements Serde<JourneyEvent> {
        private static final byte VERSION = 1;

        @Override
        public Serializer<JourneyEvent> serializer() {
            return (topic, event) -> event == null ? null : encode(event);
        }

        @Override
        public Deserializer<JourneyEvent> deserializer() {
            return (topic, bytes) -> bytes == null ? null : decode(bytes, null);
        }

        static byte[] encode(JourneyEvent event) {
            byte[] organisation = event.organisation().getBytes(StandardCharsets.US_ASCII);
            byte[] place = event.place().getBytes(StandardCharsets.US_ASCII);
            int size = 1 + 8 * 4 + 2 + organisation.length + place.length + 1
                    + (event.reference() == null ? 0 : 32) + (event.hasCorrects() ? 16 : 0) + 1 + 12;
            ByteBuffer buffer = ByteBuffer.allocate(size);
            buffer.put(VERSION)
                    .putLong(event.idHi())
                    .putLong(event.idLo())
                    .putLong(event.occurredAtMillis())
                    .putLong(event.recordedAtMillis())
                    .put((byte) organisation.length)
                    .put(organisation)
                    .put((byte) place.length)
                    .put(place)
                    .put((byte) ((event.reference() == null ? 0 : 1) | (event.hasCorrects() ? 2 : 0)));
            if (event.reference() != null) {
                buffer.put(event.reference());
            }
            if (event.hasCorrects()) {
                buffer.putLong(event.correctsHi()).putLong(event.correctsLo());
            }
            buffer.put((byte) event.kind()).putInt(event.d1()).putInt(event.d2()).putInt(event.d3());
            return buffer.array();
        }

        /** The event of {@code bytes}; {@code patient} may be null (the key holds it). */
        static JourneyEvent decode(byte[] bytes, byte[] patient) {
            ByteBuffer buffer = ByteBuffer.wrap(bytes);
            if (buffer.get() != VERSION) {
                throw new IllegalArgumentException("not a journey event of this version");
            }
            long idHi = buffer.getLong();
            long idLo = buffer.getLong();
            long occurred = buffer.getLong();
            long recorded = buffer.getLong();
            String organisation = ascii(buffer, buffer.get());
            String place = ascii(buffer, buffer.get());
            int flags = buffer.get();
            byte[] reference = null;
            if ((flags & 1) != 0) {
                reference = new byte[32];
                buffer.get(reference);
            }
            boolean hasCorrects = (flags & 2) != 0;
            long correctsHi = hasCorrects ? buffer.getLong() : 0;
            long correctsLo = hasCorrects ? buffer.getLong() : 0;
            int kind = buffer.get();
            return new JourneyEvent(patient, idHi, idLo, occurred, recorded, organisation, place, reference,
                    hasCorrects, correctsHi, correctsLo, kind, buffer.getInt(), buffer.getInt(), buffer.getInt());
        }

        private static String ascii(ByteBuffer buffer, int length) {
            byte[] text = new byte[length];
            buffer.get(text);
            return new String(text, StandardCharsets.US_ASCII);
        }
    }

    /**
     * The ICS's reference data, as ingest uses it (icsflow_core::Reference):
     * its places, the organisations its partners speak for, and which
     * partners are trusts with sites.
     */
    static final class Reference {
        static final String OUT_OF_AREA = "out_of_area";

        final Set<String> places;
        /** Every partner's code and the codes it publishes for. */
        final Set<String> organisations;
        /** Acute trusts with a 3-character code: their 5-character sites count as them. */
        final Set<String> siteTrusts;

        Reference(Set<String> places, Set<String> organisations, Set<String> siteTrusts) {
            this.places = Set.copyOf(places);
            this.organisations = Set.copyOf(organisations);
            this.siteTrusts = Set.copyOf(siteTrusts);
        }

        /**
         * The reference data of icsflow's pipeline benchmark
         * (icsflow_core::samples_reference): place E06000047, trust RVW,
         * local authority 702 and practice M83670, the organisations of
         * the sample journey.
         */
        static Reference samples() {
            return new Reference(Set.of("E06000047"), Set.of("RVW", "702", "M83670"), Set.of("RVW"));
        }

        /** An ICS's reference.toml (deploy/config/reference.toml is the demo's). */
        static Reference load(Path file) throws IOException {
            JsonNode root = new TomlMapper().readTree(file.toFile());
            Set<String> places = new HashSet<>();
            for (JsonNode place : root.path("places")) {
                places.add(checked("places.code", place.path("code").asText(), true));
            }
            Set<String> organisations = new HashSet<>();
            Set<String> siteTrusts = new HashSet<>();
            for (JsonNode partner : root.path("partners")) {
                String code = checked("partners.code", partner.path("code").asText(), false);
                organisations.add(code);
                if ("acute_trust".equals(partner.path("kind").asText()) && code.length() == 3) {
                    siteTrusts.add(code);
                }
                for (JsonNode other : partner.path("publishes_for")) {
                    organisations.add(checked("partners.publishes_for", other.asText(), false));
                }
            }
            if (places.isEmpty() || organisations.isEmpty()) {
                throw new IOException(file + " names no places or no partners");
            }
            return new Reference(places, organisations, siteTrusts);
        }

        private static String checked(String field, String code, boolean place) throws IOException {
            byte[] bytes = code.getBytes(StandardCharsets.US_ASCII);
            boolean valid = place ? Validation.isPlace(bytes, bytes.length) : Validation.isOds(bytes, bytes.length);
            if (!valid) {
                throw new IOException("reference data: " + field + " `" + code + "` is not a valid code");
            }
            return code;
        }

        /** Reference::counted_organisation: the organisation, its trust for a site, or null for nobody's. */
        String countedOrganisation(String organisation) {
            if (organisations.contains(organisation)) {
                return organisation;
            }
            if (organisation.length() == 5) {
                String trust = organisation.substring(0, 3);
                if (siteTrusts.contains(trust)) {
                    return trust;
                }
            }
            return null;
        }

        /** Reference::counted_place: the place, or {@code out_of_area} when it is not the ICS's. */
        String countedPlace(String place) {
            return places.contains(place) ? place : OUT_OF_AREA;
        }
    }

    /**
     * Decodes and validates partner records of any feed, as icsflow's
     * EventDecoder (single-object framing; without a schema registry, as
     * icsflow runs when none is configured) and its ingest's routing do.
     * Not thread-safe: one per stream task.
     */
    static final class Decoder {
        /** Records larger than this are refused before any parsing (codec.rs). */
        static final int MAX_RECORD_BYTES = 64 * 1024;
        private static final int SINGLE_OBJECT_HEADER = 10;

        /** A writer schema found by its fingerprint, with the reader that resolves it to its feed's current version. */
        private record Writer(Feed feed, GenericDatumReader<GenericRecord> reader, boolean compatible) {}

        private final Map<Long, Writer> writers = new HashMap<>();
        private final Reference reference;
        private BinaryDecoder binary;

        Decoder(Reference reference) {
            this.reference = reference;
            for (Feed feed : Feed.values()) {
                List<Schema> versions = Schemas.versions(feed);
                Schema current = versions.get(versions.size() - 1);
                for (Schema writer : versions) {
                    boolean compatible = SchemaCompatibility.checkReaderWriterCompatibility(current, writer).getType()
                            == SchemaCompatibility.SchemaCompatibilityType.COMPATIBLE;
                    writers.put(SchemaNormalization.parsingFingerprint64(writer),
                            new Writer(feed, new GenericDatumReader<>(writer, current, GenericData.get()), compatible));
                }
            }
        }

        /** The fingerprints known, by feed and version, for the start-up log line. */
        static String describe() {
            StringBuilder text = new StringBuilder();
            for (Feed feed : Feed.values()) {
                List<Schema> versions = Schemas.versions(feed);
                for (int version = 0; version < versions.size(); version++) {
                    text.append(text.length() == 0 ? "" : ", ")
                            .append(feed.label).append(" v").append(version + 1).append(' ')
                            .append(String.format("%016x", Long.reverseBytes(
                                    SchemaNormalization.parsingFingerprint64(versions.get(version)))));
                }
            }
            return text.toString();
        }

        /**
         * The event of one record read from the partner topic of
         * {@code topicFeed}, at wall-clock {@code nowMillis}; or why not.
         */
        JourneyEvent decode(byte[] bytes, Feed topicFeed, long nowMillis) throws Rejected {
            if (bytes == null || bytes.length == 0) {
                throw new Rejected(Reason.MALFORMED, null);
            }
            if (bytes.length > MAX_RECORD_BYTES) {
                throw new Rejected(Reason.MALFORMED, null);
            }
            Writer writer;
            if ((bytes[0] & 0xff) == 0xc3 && bytes.length >= 2 && (bytes[1] & 0xff) == 0x01) {
                if (bytes.length < SINGLE_OBJECT_HEADER) {
                    throw new Rejected(Reason.MALFORMED, null);
                }
                long fingerprint = ByteBuffer.wrap(bytes, 2, 8).order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong();
                writer = writers.get(fingerprint);
                if (writer == null) {
                    throw new Rejected(Reason.UNKNOWN_SCHEMA, null);
                }
            } else if (bytes[0] == 0x00) {
                // Confluent framing: icsflow resolves it through a schema
                // registry; with none configured (as here) it is
                // unknown_schema, as icsflow's decoder says without one.
                throw new Rejected(bytes.length >= 5 ? Reason.UNKNOWN_SCHEMA : Reason.MALFORMED, null);
            } else {
                throw new Rejected(Reason.MALFORMED, null);
            }
            if (!writer.compatible()) {
                throw new Rejected(Reason.INCOMPATIBLE_SCHEMA, null);
            }
            GenericRecord record;
            try {
                binary = DecoderFactory.get().binaryDecoder(bytes, SINGLE_OBJECT_HEADER,
                        bytes.length - SINGLE_OBJECT_HEADER, binary);
                record = writer.reader().read(null, binary);
                if (!binary.isEnd()) {
                    throw new Rejected(Reason.MALFORMED, null); // bytes left after the record
                }
            } catch (IOException | RuntimeException unreadable) {
                // Cut short, an index out of range, a negative length...
                throw new Rejected(Reason.MALFORMED, null);
            }
            JourneyEvent event = Validation.validate(writer.feed(), record, nowMillis);
            // ingest.rs `route`: the feed of its topic, then the reference data.
            if (event.feed() != topicFeed) {
                throw new Rejected(Reason.INCOMPATIBLE_SCHEMA, null);
            }
            String organisation = reference.countedOrganisation(event.organisation());
            if (organisation == null) {
                throw new Rejected(Reason.ORGANISATION_MISMATCH, "source_organisation");
            }
            String place = reference.countedPlace(event.place());
            return new JourneyEvent(event.patient(), event.idHi(), event.idLo(), event.occurredAtMillis(),
                    event.recordedAtMillis(), organisation, place, event.reference(), event.hasCorrects(),
                    event.correctsHi(), event.correctsLo(), event.kind(), event.d1(), event.d2(), event.d3());
        }
    }

    /** The repository's schemas, copied into the jar under schemas/ at build time. */
    static final class Schemas {
        private Schemas() {}

        private static final Map<Feed, List<Schema>> VERSIONS = new HashMap<>();

        /** Every version of a feed's schema, v1 first; the last is the current one. */
        static synchronized List<Schema> versions(Feed feed) {
            return VERSIONS.computeIfAbsent(feed, Schemas::load);
        }

        private static List<Schema> load(Feed feed) {
            List<Schema> versions = new ArrayList<>();
            for (int version = 1; ; version++) {
                String path = "/schemas/" + feed.label + "/v" + version + ".avsc";
                try (InputStream input = Events.class.getResourceAsStream(path)) {
                    if (input == null) {
                        break;
                    }
                    // A parser per file: the versions reuse their names.
                    versions.add(new Schema.Parser().parse(input));
                } catch (IOException error) {
                    throw new UncheckedIOException("reading " + path, error);
                }
            }
            if (versions.isEmpty()) {
                throw new IllegalStateException("no schema of " + feed.label + " in the jar (schemas/ missing at build time?)");
            }
            return versions;
        }
    }

    /**
     * The validations of icsflow-core, over a datum read as the current
     * version of its feed's schema.
     */
    static final class Validation {
        private Validation() {}

        /** TimestampPolicy: 2000-01-01 to 2100-01-01, and five minutes' tolerance. */
        static final long EARLIEST_MILLIS = 946_684_800_000L;
        static final long LATEST_MILLIS = 4_102_444_800_000L;
        static final long TOLERANCE_MILLIS = 5 * 60 * 1000;
        static final long EARLIEST_DAY = EARLIEST_MILLIS / 86_400_000L;
        static final long LATEST_DAY = LATEST_MILLIS / 86_400_000L;

        /** The fields every feed's envelope has, in every schema's order. */
        private static final int EVENT_ID = 0;
        private static final int EVENT_TYPE = 1;
        private static final int OCCURRED_AT = 2;
        private static final int RECORDED_AT = 3;
        private static final int SOURCE_ORGANISATION = 4;
        private static final int PLACE = 5;
        private static final int PATIENT_PSEUDONYM = 6;
        private static final int EPISODE_REFERENCE = 7;
        private static final int CORRECTS_EVENT_ID = 8;
        private static final int PAYLOAD = 9;

        /**
         * WireRecord::into_event, then the engine's stored kind of the body.
         * On a rejection, every string that is not a valid pseudonym or UUID
         * is searched for an NHS number first: one makes the reason
         * identifiable_data, whatever else was wrong.
         */
        static JourneyEvent validate(Feed feed, GenericRecord record, long nowMillis) throws Rejected {
            try {
                JourneyEvent event = validated(feed, record, nowMillis);
                // The free text (a delay reason code) is guarded even when
                // valid; a valid code holds no digits, so this never fires.
                if (event.kind() == Kind.DELAY_REASON) {
                    guard(payloadStrings(feed, record));
                }
                return event;
            } catch (Rejected rejection) {
                List<String[]> strings = envelopeStrings(record);
                strings.addAll(payloadStrings(feed, record));
                guard(strings);
                throw rejection;
            }
        }

        private static JourneyEvent validated(Feed feed, GenericRecord record, long nowMillis) throws Rejected {
            // Envelope::validate, field by field in its order.
            long[] id = uuid("event_id", (Utf8) record.get(EVENT_ID));
            long occurred = (Long) record.get(OCCURRED_AT);
            long recorded = (Long) record.get(RECORDED_AT);
            String organisation = ods("source_organisation", (Utf8) record.get(SOURCE_ORGANISATION));
            Utf8 placeText = (Utf8) record.get(PLACE);
            if (!isPlace(placeText.getBytes(), placeText.getByteLength())) {
                throw Rejected.invalid("place");
            }
            String place = placeText.toString();
            byte[] patient = pseudonym("patient_pseudonym", (Utf8) record.get(PATIENT_PSEUDONYM));
            Utf8 episode = (Utf8) record.get(EPISODE_REFERENCE);
            byte[] reference = episode == null ? null : pseudonym("episode_reference", episode);
            Utf8 correctsText = (Utf8) record.get(CORRECTS_EVENT_ID);
            long[] corrects = correctsText == null ? null : uuid("corrects_event_id", correctsText);
            // TimestampPolicy::check, with the wall clock.
            if (occurred < EARLIEST_MILLIS || occurred > LATEST_MILLIS) {
                throw new Rejected(Reason.TIMESTAMP_OUT_OF_RANGE, "occurred_at");
            }
            if (recorded < EARLIEST_MILLIS || recorded > LATEST_MILLIS) {
                throw new Rejected(Reason.TIMESTAMP_OUT_OF_RANGE, "recorded_at");
            }
            if (occurred - recorded > TOLERANCE_MILLIS) {
                throw new Rejected(Reason.TIMESTAMP_OUT_OF_RANGE, "occurred_at");
            }
            if (recorded - nowMillis > TOLERANCE_MILLIS) {
                throw new Rejected(Reason.TIMESTAMP_OUT_OF_RANGE, "recorded_at");
            }
            // The payload, then whether event_type names its branch.
            GenericRecord payload = (GenericRecord) record.get(PAYLOAD);
            int[] body = switch (feed) {
                case DISCHARGE -> dischargeBody(payload);
                case SOCIAL_CARE -> socialCareBody(payload);
                case PRIMARY_CARE -> primaryCareBody(payload);
            };
            Schema union = record.getSchema().getFields().get(PAYLOAD).schema();
            int branch = union.getIndexNamed(payload.getSchema().getFullName());
            if (branch != ordinal(record.get(EVENT_TYPE))) {
                throw Rejected.invalid("event_type");
            }
            return new JourneyEvent(patient, id[0], id[1], occurred, recorded, organisation, place, reference,
                    corrects != null, corrects == null ? 0 : corrects[0], corrects == null ? 0 : corrects[1],
                    body[0], body[1], body[2], body[3]);
        }

        /** The stored kind and details of a discharge payload (Tables::stored_kind). */
        private static int[] dischargeBody(GenericRecord payload) throws Rejected {
            switch (payload.getSchema().getName()) {
                case "Admitted": {
                    int age = (Integer) payload.get("age_years");
                    if (age < 0 || age > 130) {
                        throw Rejected.invalid("age_years");
                    }
                    boolean emergency = payload.get("admission_method").toString().startsWith("EMERGENCY_");
                    Object bed = payload.get("bed_type");
                    return new int[] {Kind.ADMITTED, emergency ? 1 : 0, age, bed == null ? Kind.NONE : ordinal(bed)};
                }
                case "AdmissionCancelled":
                    return new int[] {Kind.ADMISSION_CANCELLED, 0, 0, 0};
                case "CriteriaToResideAssessed": {
                    boolean meets = (Boolean) payload.get("meets_criteria");
                    Object criterion = payload.get("criterion");
                    Integer ready = (Integer) payload.get("discharge_ready_date");
                    // The date is checked first (wire.rs), then the combination (CriteriaToReside::new).
                    if (ready != null) {
                        plausibleDate("discharge_ready_date", ready);
                    }
                    if (meets) {
                        if (criterion == null) {
                            throw Rejected.invalid("criterion");
                        }
                        if (ready != null) {
                            throw Rejected.invalid("discharge_ready_date");
                        }
                        return new int[] {Kind.CRITERIA_MET, 0, 0, 0};
                    }
                    if (criterion != null) {
                        throw Rejected.invalid("criterion");
                    }
                    return new int[] {Kind.CRITERIA_NOT_MET, ready == null ? Kind.NONE : ready, 0, 0};
                }
                case "PathwayAssigned":
                    return new int[] {Kind.PATHWAY_ASSIGNED, ordinal(payload.get("pathway")), 0, 0};
                case "DelayReasonRecorded": {
                    int family = ordinal(payload.get("reason_family"));
                    DelayReasons.check(family, payload.get("reason_code").toString());
                    return new int[] {Kind.DELAY_REASON, family, 0, 0};
                }
                case "Discharged":
                    return new int[] {Kind.DISCHARGED, ordinal(payload.get("destination")),
                            ordinal(payload.get("pathway")), 0};
                case "DischargeCancelled":
                    return new int[] {Kind.DISCHARGE_CANCELLED, 0, 0, 0};
                default:
                    throw new IllegalStateException("a discharge payload this code does not know");
            }
        }

        private static int[] socialCareBody(GenericRecord payload) {
            return switch (payload.getSchema().getName()) {
                case "ServiceStarted" -> new int[] {Kind.SERVICE_STARTED, ordinal(payload.get("service_type")),
                        ordinal(payload.get("service_component")), 0};
                case "ServiceEnded" -> new int[] {Kind.SERVICE_ENDED, ordinal(payload.get("end_reason")), 0, 0};
                default -> new int[] {Kind.OTHER_SOCIAL_CARE, 0, 0, 0};
            };
        }

        private static int[] primaryCareBody(GenericRecord payload) throws Rejected {
            switch (payload.getSchema().getName()) {
                case "DischargeSummaryFiled":
                    ods("sending_organisation", (Utf8) payload.get("sending_organisation"));
                    return new int[] {Kind.OTHER_PRIMARY_CARE, 0, 0, 0};
                case "PostDischargeContact":
                    return new int[] {Kind.CONTACT,
                            "ATTENDED".equals(payload.get("attendance").toString()) ? 1 : 0, 0, 0};
                case "RegistrationChanged": {
                    Utf8 practice = (Utf8) payload.get("new_practice");
                    if (practice != null) {
                        ods("new_practice", practice);
                    }
                    return new int[] {Kind.OTHER_PRIMARY_CARE, 0, 0, 0};
                }
                case "DeathNotified": {
                    int day = (Integer) payload.get("date_of_death");
                    plausibleDate("date_of_death", day);
                    return new int[] {Kind.DEATH_NOTIFIED, day, 0, 0};
                }
                default:
                    return new int[] {Kind.OTHER_PRIMARY_CARE, 0, 0, 0};
            }
        }

        private static int ordinal(Object symbol) {
            GenericData.EnumSymbol value = (GenericData.EnumSymbol) symbol;
            return value.getSchema().getEnumOrdinal(value.toString());
        }

        private static void plausibleDate(String field, int days) throws Rejected {
            if (days < EARLIEST_DAY || days > LATEST_DAY) {
                throw new Rejected(Reason.TIMESTAMP_OUT_OF_RANGE, field);
            }
        }

        /** Pseudonym::parse: exactly 64 lower-case hexadecimal characters. */
        static byte[] pseudonym(String field, Utf8 text) throws Rejected {
            byte[] value = parsePseudonym(text.getBytes(), text.getByteLength());
            if (value == null) {
                throw Rejected.invalid(field);
            }
            return value;
        }

        private static byte[] parsePseudonym(byte[] bytes, int length) {
            if (length != 64) {
                return null;
            }
            byte[] value = new byte[32];
            for (int index = 0; index < 32; index++) {
                int high = lowerHex(bytes[2 * index]);
                int low = lowerHex(bytes[2 * index + 1]);
                if (high < 0 || low < 0) {
                    return null;
                }
                value[index] = (byte) (high << 4 | low);
            }
            return value;
        }

        private static int lowerHex(byte digit) {
            if (digit >= '0' && digit <= '9') {
                return digit - '0';
            }
            return digit >= 'a' && digit <= 'f' ? digit - 'a' + 10 : -1;
        }

        /** EventId::parse: a UUID in the 8-4-4-4-12 form, either case; as (high, low) 64 bits. */
        static long[] uuid(String field, Utf8 text) throws Rejected {
            long[] value = parseUuid(text.getBytes(), text.getByteLength());
            if (value == null) {
                throw Rejected.invalid(field);
            }
            return value;
        }

        private static long[] parseUuid(byte[] bytes, int length) {
            if (length != 36 || bytes[8] != '-' || bytes[13] != '-' || bytes[18] != '-' || bytes[23] != '-') {
                return null;
            }
            long high = 0;
            long low = 0;
            int nibbles = 0;
            for (int position = 0; position < 36; position++) {
                if (position == 8 || position == 13 || position == 18 || position == 23) {
                    continue;
                }
                // ASCII hexadecimal only (a byte past 127 is negative here).
                int digit = Character.digit(bytes[position], 16);
                if (digit < 0) {
                    return null;
                }
                if (nibbles++ < 16) {
                    high = high << 4 | digit;
                } else {
                    low = low << 4 | digit;
                }
            }
            return new long[] {high, low};
        }

        /** OdsCode::parse: 3 to 6 upper-case letters and digits. */
        static String ods(String field, Utf8 text) throws Rejected {
            if (!isOds(text.getBytes(), text.getByteLength())) {
                throw Rejected.invalid(field);
            }
            return text.toString();
        }

        static boolean isOds(byte[] bytes, int length) {
            if (length < 3 || length > 6) {
                return false;
            }
            for (int index = 0; index < length; index++) {
                byte character = bytes[index];
                if (!(character >= 'A' && character <= 'Z') && !(character >= '0' && character <= '9')) {
                    return false;
                }
            }
            return true;
        }

        /** PlaceCode::parse: a GSS code, E06, E08, E09 or E10 and six digits. */
        static boolean isPlace(byte[] bytes, int length) {
            if (length != 9 || bytes[0] != 'E') {
                return false;
            }
            boolean prefix = (bytes[1] == '0' && (bytes[2] == '6' || bytes[2] == '8' || bytes[2] == '9'))
                    || (bytes[1] == '1' && bytes[2] == '0');
            if (!prefix) {
                return false;
            }
            for (int index = 3; index < 9; index++) {
                if (bytes[index] < '0' || bytes[index] > '9') {
                    return false;
                }
            }
            return true;
        }

        private static List<String[]> envelopeStrings(GenericRecord record) {
            List<String[]> strings = new ArrayList<>();
            String[][] fields = {
                {"event_id", text(record.get(EVENT_ID))},
                {"source_organisation", text(record.get(SOURCE_ORGANISATION))},
                {"place", text(record.get(PLACE))},
                {"patient_pseudonym", text(record.get(PATIENT_PSEUDONYM))},
                {"episode_reference", text(record.get(EPISODE_REFERENCE))},
                {"corrects_event_id", text(record.get(CORRECTS_EVENT_ID))},
            };
            for (String[] field : fields) {
                if (field[1] != null) {
                    strings.add(field);
                }
            }
            return strings;
        }

        private static List<String[]> payloadStrings(Feed feed, GenericRecord record) {
            List<String[]> strings = new ArrayList<>();
            GenericRecord payload = (GenericRecord) record.get(PAYLOAD);
            String branch = payload.getSchema().getName();
            if (feed == Feed.DISCHARGE && branch.equals("DelayReasonRecorded")) {
                strings.add(new String[] {"reason_code", text(payload.get("reason_code"))});
            } else if (feed == Feed.PRIMARY_CARE && branch.equals("DischargeSummaryFiled")) {
                strings.add(new String[] {"sending_organisation", text(payload.get("sending_organisation"))});
            } else if (feed == Feed.PRIMARY_CARE && branch.equals("RegistrationChanged")
                    && payload.get("new_practice") != null) {
                strings.add(new String[] {"new_practice", text(payload.get("new_practice"))});
            }
            return strings;
        }

        private static String text(Object value) {
            return value == null ? null : value.toString();
        }

        /** guard_identifiable_data: an NHS number in any string but a valid pseudonym or UUID. */
        private static void guard(List<String[]> strings) throws Rejected {
            for (String[] field : strings) {
                byte[] bytes = field[1].getBytes(StandardCharsets.UTF_8);
                boolean identifier = parsePseudonym(bytes, bytes.length) != null || parseUuid(bytes, bytes.length) != null;
                if (!identifier && NhsNumbers.contains(bytes)) {
                    throw new Rejected(Reason.IDENTIFIABLE_DATA, field[0]);
                }
            }
        }
    }

    /** nhs_number.rs `contains_nhs_number`: ten digits alone in a run, or 3-3-4 spaced or hyphenated. */
    static final class NhsNumbers {
        private NhsNumbers() {}

        static boolean contains(byte[] text) {
            int position = 0;
            while (position < text.length) {
                if (!isDigit(text[position])) {
                    position++;
                    continue;
                }
                int start = position;
                while (position < text.length && isDigit(text[position])) {
                    position++;
                }
                int run = position - start;
                if (run == 10 && valid(text, start) || run == 3 && spacedAt(text, start)) {
                    return true;
                }
            }
            return false;
        }

        private static boolean spacedAt(byte[] text, int start) {
            if (text.length < start + 12) {
                return false;
            }
            byte separator = text[start + 3];
            if (separator != ' ' && separator != '-' || text[start + 7] != separator) {
                return false;
            }
            if (text.length > start + 12 && isDigit(text[start + 12])) {
                return false;
            }
            byte[] digits = new byte[10];
            int index = 0;
            for (int offset : new int[] {0, 1, 2, 4, 5, 6, 8, 9, 10, 11}) {
                byte character = text[start + offset];
                if (!isDigit(character)) {
                    return false;
                }
                digits[index++] = character;
            }
            return valid(digits, 0);
        }

        /** The modulus-11 check of the ten digits at {@code start}. */
        private static boolean valid(byte[] digits, int start) {
            int sum = 0;
            for (int index = 0; index < 9; index++) {
                sum += (digits[start + index] - '0') * (10 - index);
            }
            int check = 11 - sum % 11;
            if (check == 11) {
                check = 0;
            } else if (check == 10) {
                return false;
            }
            return digits[start + 9] - '0' == check;
        }

        private static boolean isDigit(byte character) {
            return character >= '0' && character <= '9';
        }
    }

    /**
     * The national list of detailed delay reasons (codes.rs DelayReason):
     * each symbol's family is its prefix's; OTHER goes with any family.
     */
    static final class DelayReasons {
        private DelayReasons() {}

        /** Family ordinals of the schema's DelayReasonFamily. */
        private static final int HOSPITAL_PROCESS = 0;
        private static final int WELLBEING = 1;
        private static final int CARE_TRANSFER_HUB_PROCESS = 2;
        private static final int INTERFACE_PROCESS = 3;
        private static final int CAPACITY = 4;

        private static final Map<String, Integer> FAMILY = new HashMap<>();

        static {
            for (String code : List.of("HP_MEDICAL_REVIEW", "HP_THERAPY_REVIEW", "HP_REFERRAL_TO_HUB",
                    "HP_DECISION_TO_DISCHARGE", "HP_MEDICINES_OR_DOCUMENTATION", "HP_PATIENT_TRANSPORT",
                    "HP_INFECTION_CONTROL")) {
                FAMILY.put(code, HOSPITAL_PROCESS);
            }
            for (String code : List.of("WB_CONCERNS_OVER_READINESS", "WB_MENTAL_CAPACITY", "WB_SAFEGUARDING",
                    "WB_DESTINATION_READINESS")) {
                FAMILY.put(code, WELLBEING);
            }
            for (String code : List.of("HUB_CARE_NEEDS_AND_PATHWAY", "HUB_REFERRALS_BY_HUB",
                    "HUB_FUNDING_ELIGIBILITY")) {
                FAMILY.put(code, CARE_TRANSFER_HUB_PROCESS);
            }
            for (String code : List.of("IF_P1_HOME_REHABILITATION", "IF_P1_HOME_COMMUNITY_HEALTH",
                    "IF_P1_HOME_SOCIAL_CARE", "IF_P2_BED_REHABILITATION", "IF_P3_CARE_HOME", "IF_END_OF_LIFE",
                    "IF_SELF_FUNDED", "IF_CHOICE_DISCUSSIONS", "IF_HOMELESSNESS_HOUSING",
                    "IF_NO_RECOURSE_TO_PUBLIC_FUNDS", "IF_OUT_OF_AREA", "IF_PROVIDER_FURTHER_ACTION")) {
                FAMILY.put(code, INTERFACE_PROCESS);
            }
            for (String code : List.of("CAP_P0_RESTART_OF_EXISTING_CARE", "CAP_P1_HOME_REHABILITATION",
                    "CAP_P1_HOME_COMMUNITY_HEALTH", "CAP_P1_HOME_SOCIAL_CARE", "CAP_P2_BED_REHABILITATION",
                    "CAP_P2_MENTAL_HEALTH_BED", "CAP_P3_CARE_HOME", "CAP_END_OF_LIFE", "CAP_EQUIPMENT",
                    "CAP_HOUSING_ADAPTATIONS", "CAP_HOUSING_PROVISION")) {
                FAMILY.put(code, CAPACITY);
            }
        }

        /** parse_delay_reason: a symbol of the list, of the record's family (or OTHER). */
        static void check(int family, String code) throws Rejected {
            if (code.equals("OTHER")) {
                return;
            }
            Integer own = FAMILY.get(code);
            if (own == null || own != family) {
                throw Rejected.invalid("reason_code");
            }
        }
    }
}
