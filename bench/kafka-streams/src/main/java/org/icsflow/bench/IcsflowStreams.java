package org.icsflow.bench;

import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.UUID;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.atomic.LongAdder;
import java.util.stream.Stream;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StoreQueryParameters;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.InvalidStateStoreException;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse;
import org.apache.kafka.streams.kstream.Branched;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Named;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Repartitioned;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.processor.api.RecordMetadata;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.QueryableStoreTypes;
import org.apache.kafka.streams.state.ReadOnlyKeyValueStore;
import org.apache.kafka.streams.state.Stores;

import org.icsflow.bench.Events.DeadLetter;
import org.icsflow.bench.Events.Feed;
import org.icsflow.bench.Events.JourneyEvent;
import org.icsflow.bench.Events.Kind;
import org.icsflow.bench.Events.Rejected;
import org.icsflow.bench.Events.Routed;

/**
 * icsflow's job as a Kafka Streams application, for a side-by-side
 * benchmark with icsflow's own pipeline (crates/icsflow-kafka/benches/pipeline.rs).
 *
 * <pre>
 * partner topics ──ingest──▶ [accepted] ──repartition by pseudonym──▶ join ──▶ journeys (RocksDB)
 *  (discharge,      │                       (&lt;id&gt;-journey-repartition)     └──▶ not meeting criteria,
 *   social_care,    └──▶ [rejected] ──▶ dead-letter topic                       per place and day (RocksDB)
 *   primary_care)
 * </pre>
 *
 * <p>As icsflow's ingest role: decode each partner record (Avro
 * single-object encoding), validate it as icsflow-core does, count it by the
 * ICS's reference data, and send it on keyed by its patient's pseudonym, or
 * dead-letter it with icsflow's reason code. As its join role: keep one
 * journey per patient (the default persistent store, RocksDB) and keep, per
 * place, the number of patients not meeting the criteria to reside
 * (icsflow_flow_not_meeting_criteria_patients summed over provider and
 * pathway), as steps by day, as icsflow's engine keeps its series.
 *
 * <p>The runner starts with a fresh application id (so from the partner
 * topics' earliest offsets), waits until it has consumed the number of
 * partner records asked for and every event it accepted has reached its
 * journey, reads the per-place counts through interactive queries, prints
 * one JSON line to stdout and exits 0. Everything else goes to stderr.
 */
public final class IcsflowStreams {
    private IcsflowStreams() {}

    static final String JOURNEY_STORE = "journeys";
    static final String PLACE_STORE = "not-meeting-criteria-by-place-day";
    static final ZoneId LONDON = ZoneId.of("Europe/London");

    private static final String USAGE = String.join("\n",
            "usage: java -jar icsflow-kafka-streams.jar --bootstrap HOST:PORT --records N [options]",
            "",
            "  --bootstrap HOST:PORT[,...]   Kafka bootstrap servers (also --bootstrap-server)",
            "  --records N                   partner records to consume before the result is read",
            "  --topics A,B,C                the discharge, social care and primary care topics",
            "                                (default discharge,social_care,primary_care: icsflow's benchmark)",
            "  --dead-letter-topic NAME      where refused records go (default dead_letter_streams; created if missing)",
            "  --application-id ID           default icsflow-streams-<random>: a fresh group, from the earliest offsets",
            "  --state-dir DIR               RocksDB state (default <tmp>/icsflow-kafka-streams; removed at exit)",
            "  --processing-guarantee G      at_least_once (default) or exactly_once_v2",
            "  --threads N                   stream threads (default 2: the benchmark machine's cores)",
            "  --reference FILE              the ICS's reference.toml (default: the benchmark's reference data,",
            "                                place E06000047 with partners RVW, 702 and M83670)",
            "  --as-of-millis MILLIS         read the counts as of this instant (default: the wall clock)",
            "  --timeout-seconds N           give up (exit 1) after this long (default 1800)",
            "  --set NAME=VALUE              any Kafka Streams or client setting (repeatable), e.g.",
            "                                --set commit.interval.ms=100 --set producer.linger.ms=5",
            "  --log-level LEVEL             Kafka's log lines on stderr: error, warn (default), info, debug");

    /** The command line. */
    record Options(
            String bootstrap,
            long records,
            List<String> topics,
            String deadLetterTopic,
            String applicationId,
            Path stateDir,
            String processingGuarantee,
            int threads,
            Path reference,
            Long asOfMillis,
            long timeoutSeconds,
            Map<String, String> settings,
            String logLevel) {

        static Options parse(String[] arguments) {
            Map<String, String> values = new LinkedHashMap<>();
            Map<String, String> settings = new LinkedHashMap<>();
            for (int index = 0; index < arguments.length; index++) {
                String name = arguments[index];
                if (name.equals("--help") || name.equals("-h")) {
                    throw new IllegalArgumentException("");
                }
                if (!name.startsWith("--") || index + 1 >= arguments.length) {
                    throw new IllegalArgumentException("expected --NAME VALUE, got `" + name + "`");
                }
                String value = arguments[++index];
                if (name.equals("--set")) {
                    int equals = value.indexOf('=');
                    if (equals <= 0) {
                        throw new IllegalArgumentException("--set takes NAME=VALUE");
                    }
                    settings.put(value.substring(0, equals), value.substring(equals + 1));
                } else {
                    values.put(name.equals("--bootstrap-server") ? "--bootstrap" : name, value);
                }
            }
            List<String> known = List.of("--bootstrap", "--records", "--topics", "--dead-letter-topic",
                    "--application-id", "--state-dir", "--processing-guarantee", "--threads", "--reference",
                    "--as-of-millis", "--timeout-seconds", "--log-level");
            for (String name : values.keySet()) {
                if (!known.contains(name)) {
                    throw new IllegalArgumentException("unknown option " + name);
                }
            }
            String bootstrap = values.get("--bootstrap");
            String records = values.get("--records");
            if (bootstrap == null || records == null) {
                throw new IllegalArgumentException("--bootstrap and --records are required");
            }
            List<String> topics = List.of(values.getOrDefault("--topics", "discharge,social_care,primary_care").split(","));
            if (topics.size() != 3 || topics.stream().anyMatch(String::isBlank)) {
                throw new IllegalArgumentException("--topics names three topics: discharge, social care, primary care");
            }
            String guarantee = values.getOrDefault("--processing-guarantee", StreamsConfig.AT_LEAST_ONCE);
            if (!guarantee.equals(StreamsConfig.AT_LEAST_ONCE) && !guarantee.equals(StreamsConfig.EXACTLY_ONCE_V2)) {
                throw new IllegalArgumentException("--processing-guarantee is at_least_once or exactly_once_v2");
            }
            try {
                return new Options(
                        bootstrap,
                        Long.parseLong(records),
                        topics,
                        values.getOrDefault("--dead-letter-topic", "dead_letter_streams"),
                        values.getOrDefault("--application-id",
                                "icsflow-streams-" + UUID.randomUUID().toString().substring(0, 8)),
                        Path.of(values.getOrDefault("--state-dir",
                                Path.of(System.getProperty("java.io.tmpdir"), "icsflow-kafka-streams").toString())),
                        guarantee,
                        Integer.parseInt(values.getOrDefault("--threads", "2")),
                        values.containsKey("--reference") ? Path.of(values.get("--reference")) : null,
                        values.containsKey("--as-of-millis") ? Long.valueOf(values.get("--as-of-millis")) : null,
                        Long.parseLong(values.getOrDefault("--timeout-seconds", "1800")),
                        settings,
                        values.getOrDefault("--log-level", "warn"));
            } catch (NumberFormatException error) {
                throw new IllegalArgumentException("a number option is not a number: " + error.getMessage());
            }
        }
    }

    public static void main(String[] arguments) {
        long started = System.nanoTime();
        // Avro reads these once, before its first decoder: no string or
        // collection in a partner record may claim more than the 64 KiB a
        // record may have at all.
        System.setProperty("org.apache.avro.limits.string.maxLength", String.valueOf(Events.Decoder.MAX_RECORD_BYTES));
        System.setProperty("org.apache.avro.limits.bytes.maxLength", String.valueOf(Events.Decoder.MAX_RECORD_BYTES));
        System.setProperty("org.apache.avro.limits.collectionItems.maxLength", String.valueOf(Events.Decoder.MAX_RECORD_BYTES));
        Options options;
        try {
            options = Options.parse(arguments);
        } catch (IllegalArgumentException error) {
            if (error.getMessage().isEmpty()) {
                System.out.println(USAGE); // asked for with --help
                System.exit(0);
            }
            System.err.println("icsflow-streams: " + error.getMessage());
            System.err.println(USAGE);
            System.exit(64);
            return;
        }
        // slf4j-simple writes to stderr; read once, at the first logger.
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", options.logLevel());
        System.setProperty("org.slf4j.simpleLogger.showDateTime", "true");
        int status;
        try {
            status = run(options, started);
        } catch (Exception error) {
            System.err.println("icsflow-streams: " + error);
            status = 1;
        }
        // Kafka's threads are not all daemons: leave at once, with the status.
        System.exit(status);
    }

    /** Counts shared by the processors of every stream thread and the runner. */
    static final class Progress {
        final AtomicLong partnerRecords = new AtomicLong();
        final LongAdder accepted = new LongAdder();
        final LongAdder rejected = new LongAdder();
        /** Events the join processor has taken (applied, duplicate or ignored as the journey is full). */
        final LongAdder joined = new LongAdder();
        final Map<String, LongAdder> outcomes = new ConcurrentSkipListMap<>();
        final Map<String, LongAdder> reasons = new ConcurrentSkipListMap<>();
        final AtomicLong firstRecordNanos = new AtomicLong();
        final AtomicLong firstRecordCpuNanos = new AtomicLong();
        private final AtomicBoolean begun = new AtomicBoolean();

        /** When the first partner record arrives: the start of the measured span. */
        void recordArrived() {
            if (!begun.get() && begun.compareAndSet(false, true)) {
                firstRecordNanos.set(System.nanoTime());
                firstRecordCpuNanos.set(processCpuNanos());
            }
        }

        /**
         * A partner record routed: counted after {@link #accepted} or
         * {@link #rejected}, so that once N records are counted, every event
         * among them is already in {@link #accepted}.
         */
        void recordRouted() {
            partnerRecords.incrementAndGet();
        }

        static void count(Map<String, LongAdder> counts, String key) {
            counts.computeIfAbsent(key, unused -> new LongAdder()).increment();
        }
    }

    static int run(Options options, long started) throws Exception {
        Events.Reference reference = options.reference() == null
                ? Events.Reference.samples()
                : Events.Reference.load(options.reference());
        log("schemas by single-object fingerprint (header bytes): " + Events.Decoder.describe());
        log("reference data: " + (options.reference() == null ? "the benchmark's" : options.reference())
                + ", places " + new TreeSet<>(reference.places));
        ensureDeadLetterTopic(options);

        Progress progress = new Progress();
        Topology topology = topology(options, reference, progress);
        Properties properties = properties(options);
        log("application " + options.applicationId() + ", " + options.processingGuarantee() + ", "
                + options.threads() + " stream threads, state in " + options.stateDir());

        AtomicReference<Throwable> failure = new AtomicReference<>();
        KafkaStreams streams = new KafkaStreams(topology, properties);
        streams.setUncaughtExceptionHandler(error -> {
            failure.compareAndSet(null, error);
            return StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        streams.start();
        try {
            long deadline = started + Duration.ofSeconds(options.timeoutSeconds()).toNanos();
            long nextReport = System.nanoTime();
            while (true) {
                KafkaStreams.State state = streams.state();
                if (failure.get() != null || state == KafkaStreams.State.ERROR
                        || state == KafkaStreams.State.PENDING_ERROR || state == KafkaStreams.State.NOT_RUNNING) {
                    log("stopped before the records were processed: state " + state
                            + (failure.get() == null ? "" : ", " + failure.get()));
                    return 1;
                }
                // Settled: the records asked for are consumed, and every event
                // accepted so far went through the repartition topic into its
                // journey (so the per-place steps hold all of them). Joined is
                // read before accepted: neither can make this true too early.
                long partner = progress.partnerRecords.get();
                if (partner >= options.records() && progress.joined.sum() >= progress.accepted.sum()
                        && state == KafkaStreams.State.RUNNING) {
                    break;
                }
                if (System.nanoTime() > deadline) {
                    log("timed out after " + options.timeoutSeconds() + " s: " + describe(progress, state));
                    return 1;
                }
                if (System.nanoTime() >= nextReport) {
                    log(describe(progress, state));
                    nextReport = System.nanoTime() + Duration.ofSeconds(5).toNanos();
                }
                Thread.sleep(5);
            }
            long settled = System.nanoTime();
            long cpu = processCpuNanos();
            Map<String, Long> perPlace = perPlace(streams, options.asOfMillis() == null
                    ? System.currentTimeMillis() : options.asOfMillis(), reference.places);
            log(describe(progress, streams.state()));
            log("join outcomes " + progress.outcomes + "; dead-lettered by reason " + progress.reasons);

            StringBuilder json = new StringBuilder()
                    .append("{\"records\":").append(progress.partnerRecords.get())
                    .append(",\"seconds_from_start\":").append(seconds(settled - started))
                    .append(",\"seconds_from_first_record\":").append(seconds(settled - progress.firstRecordNanos.get()))
                    .append(",\"cpu_seconds\":").append(seconds(cpu))
                    .append(",\"per_place\":{");
            String separator = "";
            for (Map.Entry<String, Long> place : perPlace.entrySet()) {
                json.append(separator).append('"').append(place.getKey()).append("\":").append(place.getValue());
                separator = ",";
            }
            json.append("},\"dead_lettered\":").append(progress.rejected.sum())
                    .append(",\"cpu_seconds_from_first_record\":")
                    .append(seconds(cpu - progress.firstRecordCpuNanos.get()))
                    .append(",\"processing_guarantee\":\"").append(options.processingGuarantee())
                    .append("\",\"stream_threads\":").append(options.threads())
                    .append('}');
            System.out.println(json);
            System.out.flush();
            return 0;
        } finally {
            streams.close(Duration.ofSeconds(30));
            // The state of a fresh application id is of no further use:
            // Streams removes its stores; its lock and metadata files go too.
            streams.cleanUp();
            removeTree(options.stateDir().resolve(options.applicationId()));
        }
    }

    private static void removeTree(Path root) {
        if (!Files.exists(root)) {
            return;
        }
        try (Stream<Path> paths = Files.walk(root)) {
            paths.sorted(Comparator.reverseOrder()).forEach(path -> path.toFile().delete());
        } catch (IOException error) {
            log("could not remove " + root + ": " + error);
        }
    }

    /**
     * The topology: ingest (decode, validate, route), the repartition by
     * pseudonym, and join (journeys and the per-place steps).
     */
    static Topology topology(Options options, Events.Reference reference, Progress progress) {
        StreamsBuilder builder = new StreamsBuilder();
        // Both stores RocksDB (the default persistent store), with the
        // record cache and the changelog topic the DSL gives its own stores.
        builder.addStateStore(Stores.keyValueStoreBuilder(
                        Stores.persistentKeyValueStore(JOURNEY_STORE), Serdes.Bytes(), Serdes.ByteArray())
                .withCachingEnabled());
        builder.addStateStore(Stores.keyValueStoreBuilder(
                        Stores.persistentKeyValueStore(PLACE_STORE), Serdes.String(), Serdes.Long())
                .withCachingEnabled());

        Map<String, Feed> feeds = Map.of(
                options.topics().get(0), Feed.DISCHARGE,
                options.topics().get(1), Feed.SOCIAL_CARE,
                options.topics().get(2), Feed.PRIMARY_CARE);
        KStream<byte[], byte[]> partner = builder.stream(options.topics(),
                Consumed.with(Serdes.ByteArray(), Serdes.ByteArray()).withName("partner-topics"));
        Map<String, KStream<byte[], Routed>> routes = partner
                .<byte[], Routed>process(() -> new IngestProcessor(feeds, reference, progress), Named.as("ingest"))
                .split(Named.as("route-"))
                .branch((key, routed) -> routed instanceof JourneyEvent, Branched.as("accepted"))
                .defaultBranch(Branched.as("rejected"));

        routes.get("route-accepted")
                .mapValues(routed -> (JourneyEvent) routed, Named.as("event"))
                // Through Kafka, as Streams re-keys: <application id>-journey-repartition.
                .repartition(Repartitioned.with(Serdes.ByteArray(), new Events.JourneyEventSerde()).withName("journey"))
                .process(() -> new JoinProcessor(progress), Named.as("join"), JOURNEY_STORE, PLACE_STORE);

        routes.get("route-rejected")
                .mapValues(routed -> new byte[0], Named.as("empty-value"))
                .to(options.deadLetterTopic(), Produced.with(Serdes.ByteArray(), Serdes.ByteArray()).withName("dead-letter"));
        return builder.build();
    }

    static Properties properties(Options options) {
        Properties properties = new Properties();
        properties.put(StreamsConfig.APPLICATION_ID_CONFIG, options.applicationId());
        properties.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, options.bootstrap());
        properties.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, options.processingGuarantee());
        properties.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, options.threads());
        properties.put(StreamsConfig.STATE_DIR_CONFIG, options.stateDir().toString());
        properties.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.ByteArraySerde.class);
        properties.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.ByteArraySerde.class);
        // A fresh application id has no committed offsets: start at the
        // beginning of the partner topics (Streams' default too; said here).
        properties.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
        // Everything else is Kafka Streams' default (commit.interval.ms 30 s
        // at least once and 100 ms exactly once, a 10 MB record cache) unless
        // given with --set.
        properties.putAll(options.settings());
        return properties;
    }

    /** The dead-letter topic, created with the discharge topic's partition count if the broker lacks it. */
    static void ensureDeadLetterTopic(Options options) throws Exception {
        Properties properties = new Properties();
        properties.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, options.bootstrap());
        try (Admin admin = Admin.create(properties)) {
            if (admin.listTopics().names().get().contains(options.deadLetterTopic())) {
                return;
            }
            TopicDescription discharge = admin.describeTopics(List.of(options.topics().get(0)))
                    .allTopicNames().get().get(options.topics().get(0));
            admin.createTopics(List.of(new NewTopic(options.deadLetterTopic(),
                    java.util.Optional.of(discharge.partitions().size()), java.util.Optional.empty()))).all().get();
            log("created the dead-letter topic " + options.deadLetterTopic());
        }
    }

    /**
     * icsflow's ingest role for one record: decode and validate it, then send
     * it on keyed by pseudonym, or as a dead letter with icsflow's headers
     * (reason, field, where it was read) and nothing of the record itself.
     */
    static final class IngestProcessor implements Processor<byte[], byte[], byte[], Routed> {
        private final Map<String, Feed> feeds;
        private final Events.Decoder decoder;
        private final Progress progress;
        private ProcessorContext<byte[], Routed> context;

        IngestProcessor(Map<String, Feed> feeds, Events.Reference reference, Progress progress) {
            this.feeds = feeds;
            this.decoder = new Events.Decoder(reference);
            this.progress = progress;
        }

        @Override
        public void init(ProcessorContext<byte[], Routed> context) {
            this.context = context;
        }

        @Override
        public void process(Record<byte[], byte[]> record) {
            progress.recordArrived();
            RecordMetadata source = context.recordMetadata().orElseThrow();
            Feed feed = feeds.get(source.topic());
            long now = System.currentTimeMillis();
            try {
                JourneyEvent event = decoder.decode(record.value(), feed, now);
                progress.accepted.increment();
                context.forward(new Record<>(event.patient(), (Routed) event, record.timestamp(), new RecordHeaders()));
            } catch (Rejected rejection) {
                progress.rejected.increment();
                Progress.count(progress.reasons, rejection.reason.code);
                RecordHeaders headers = new RecordHeaders();
                header(headers, "icsflow.reason", rejection.reason.code);
                header(headers, "icsflow.source.topic", source.topic());
                header(headers, "icsflow.source.partition", String.valueOf(source.partition()));
                header(headers, "icsflow.source.offset", String.valueOf(source.offset()));
                header(headers, "icsflow.source.feed", feed.label);
                if (rejection.field != null) {
                    header(headers, "icsflow.field", rejection.field);
                }
                header(headers, "icsflow.rejected.at", String.valueOf(now));
                context.forward(new Record<>(null, (Routed) new DeadLetter(rejection), record.timestamp(), headers));
            }
            progress.recordRouted();
        }

        private static void header(RecordHeaders headers, String name, String value) {
            headers.add(name, value.getBytes(java.nio.charset.StandardCharsets.UTF_8));
        }
    }

    /**
     * icsflow's join role for one event: add it to its patient's journey
     * (RocksDB) and move the per-place steps of "not meeting the criteria
     * to reside" by what that changed.
     */
    static final class JoinProcessor implements Processor<byte[], JourneyEvent, Void, Void> {
        private final Progress progress;
        private final DayCache days = new DayCache();
        private KeyValueStore<Bytes, byte[]> journeys;
        private KeyValueStore<String, Long> places;

        JoinProcessor(Progress progress) {
            this.progress = progress;
        }

        @Override
        public void init(ProcessorContext<Void, Void> context) {
            journeys = context.getStateStore(JOURNEY_STORE);
            places = context.getStateStore(PLACE_STORE);
        }

        @Override
        public void process(Record<byte[], JourneyEvent> record) {
            Bytes patient = Bytes.wrap(record.key());
            byte[] held = journeys.get(patient);
            Journey journey = held == null ? new Journey() : Journey.decode(held);
            Map<String, Integer> before = journey.notMeetingCriteriaSteps();
            Journey.Outcome outcome = journey.apply(record.value(), days);
            if (outcome == Journey.Outcome.APPLIED) {
                Map<String, Integer> after = journey.notMeetingCriteriaSteps();
                // Only what changed: most events move no step at all.
                for (Map.Entry<String, Integer> step : before.entrySet()) {
                    after.merge(step.getKey(), -step.getValue(), Integer::sum);
                }
                for (Map.Entry<String, Integer> change : after.entrySet()) {
                    if (change.getValue() != 0) {
                        Long value = places.get(change.getKey());
                        long moved = (value == null ? 0 : value) + change.getValue();
                        if (moved == 0) {
                            places.delete(change.getKey());
                        } else {
                            places.put(change.getKey(), moved);
                        }
                    }
                }
                journeys.put(patient, journey.encode());
            }
            Progress.count(progress.outcomes, outcome.name().toLowerCase(Locale.ROOT));
            progress.joined.increment();
        }
    }

    /**
     * The per-place count as of {@code asOfMillis}'s day in England: the
     * steps of every place (summed over every task's store) up to and
     * including that day. Every place of the reference data is listed, 0
     * when it has no patient counted (icsflow exports no series for it
     * then, or one reading 0: the same count); {@code out_of_area} is
     * listed once a step of it is held.
     */
    static Map<String, Long> perPlace(KafkaStreams streams, long asOfMillis, java.util.Set<String> places)
            throws InterruptedException {
        long today = new DayCache().dayOf(asOfMillis);
        for (int attempt = 0; ; attempt++) {
            try {
                ReadOnlyKeyValueStore<String, Long> store = streams.store(
                        StoreQueryParameters.fromNameAndType(PLACE_STORE, QueryableStoreTypes.keyValueStore()));
                Map<String, Long> counts = new TreeMap<>();
                for (String place : places) {
                    counts.put(place, 0L);
                }
                try (KeyValueIterator<String, Long> steps = store.all()) {
                    while (steps.hasNext()) {
                        KeyValue<String, Long> step = steps.next();
                        int at = step.key.indexOf('@');
                        long day = Long.parseLong(step.key.substring(at + 1));
                        counts.merge(step.key.substring(0, at), day <= today ? step.value : 0L, Long::sum);
                    }
                }
                return counts;
            } catch (InvalidStateStoreException notReady) {
                if (attempt > 200) {
                    throw notReady;
                }
                Thread.sleep(50);
            }
        }
    }

    /**
     * The day in England (Europe/London, summer time included) of an
     * instant, as days since 1970, remembered per UTC hour: the date in
     * London changes only on a UTC hour (icsflow's engine does the same).
     */
    static final class DayCache {
        private static final int HOURS = 256;
        private final long[] hours = new long[HOURS];
        private final int[] days = new int[HOURS];

        DayCache() {
            Arrays.fill(hours, Long.MIN_VALUE);
        }

        int dayOf(long millis) {
            long hour = Math.floorDiv(millis, 3_600_000L);
            int slot = (int) Math.floorMod(hour, (long) HOURS);
            if (hours[slot] != hour) {
                hours[slot] = hour;
                days[slot] = (int) Instant.ofEpochMilli(millis).atZone(LONDON).toLocalDate().toEpochDay();
            }
            return days[slot];
        }
    }

    /**
     * One patient's journey, as icsflow's engine keeps it
     * (crates/icsflow-engine/src/journey.rs), and the part of its
     * derivation (spells.rs, derive.rs) that the count of patients not
     * meeting the criteria to reside reads: spells per trust and spell
     * reference, their admission, cancellation and standing discharge, and
     * the periods without criteria to reside of adults in general and acute
     * beds.
     */
    static final class Journey {
        /** icsflow's JOURNEY_EVENT_LIMIT and JOURNEY_REFERENCE_LIMIT. */
        static final int EVENT_LIMIT = 1_000;
        static final int REFERENCE_LIMIT = 255;
        static final int NO_REFERENCE = -1;
        /** The sitrep's scope: adults, in general and acute beds (BedType ordinal 0) or a bed of no type. */
        static final int ADULT_AGE_YEARS = 18;
        static final int GENERAL_AND_ACUTE = 0;
        private static final byte VERSION = 1;

        enum Outcome { APPLIED, DUPLICATE, JOURNEY_FULL }

        /**
         * A stored event: {@code at} and {@code recorded} in seconds since
         * 1970 (icsflow orders events to the second), {@code day} the day in
         * England of {@code at}; {@code organisation} the trust for the
         * discharge feed, the publisher otherwise; {@code place} only on an
         * admission.
         */
        record Stored(long idHi, long idLo, long at, long recorded, int day, String organisation, int reference,
                      int kind, int d1, int d2, int d3, String place) {

            boolean is(String otherOrganisation, long otherHi, long otherLo) {
                return idHi == otherHi && idLo == otherLo && organisation.equals(otherOrganisation);
            }
        }

        /** The event {@code by} of {@code organisation} replaced its event {@code corrected}. */
        record Correction(String organisation, long correctedHi, long correctedLo, long byHi, long byLo) {}

        /** Sorted by (at, id), the id compared as the UUID's 128 bits. */
        final List<Stored> events = new ArrayList<>();
        /** Spell and episode references, interned per journey. */
        final List<byte[]> references = new ArrayList<>();
        final List<Correction> corrections = new ArrayList<>();

        /** Engine::apply: idempotent by organisation and event id; the later-recorded version stands. */
        Outcome apply(JourneyEvent event, DayCache days) {
            String organisation = event.feed() == Feed.DISCHARGE
                    ? event.organisation().substring(0, 3) : event.organisation();
            long at = Math.floorDiv(event.occurredAtMillis(), 1000L);
            long recorded = Math.floorDiv(event.recordedAtMillis(), 1000L);
            if (events.size() >= EVENT_LIMIT) {
                return Outcome.JOURNEY_FULL;
            }
            Stored held = find(organisation, event.idHi(), event.idLo());
            boolean replaces = false;
            if (held != null) {
                if (compareVersions(event, at, recorded, held) <= 0) {
                    return Outcome.DUPLICATE;
                }
                replaces = true;
            }
            if (event.reference() != null && referenceIndex(event.reference()) == NO_REFERENCE
                    && references.size() >= REFERENCE_LIMIT) {
                return Outcome.JOURNEY_FULL;
            }
            if (replaces) {
                events.remove(held);
                corrections.removeIf(correction -> correction.organisation().equals(organisation)
                        && correction.byHi() == event.idHi() && correction.byLo() == event.idLo());
            }
            int reference = NO_REFERENCE;
            if (event.reference() != null) {
                reference = referenceIndex(event.reference());
                if (reference == NO_REFERENCE) {
                    references.add(event.reference());
                    reference = references.size() - 1;
                }
            }
            insert(new Stored(event.idHi(), event.idLo(), at, recorded, days.dayOf(event.occurredAtMillis()),
                    organisation, reference, event.kind(), event.d1(), event.d2(), event.d3(),
                    event.kind() == Kind.ADMITTED ? event.place() : null));
            if (event.hasCorrects()) {
                Correction correction = new Correction(organisation, event.correctsHi(), event.correctsLo(),
                        event.idHi(), event.idLo());
                if (!corrections.contains(correction)) {
                    corrections.add(correction);
                }
            }
            return Outcome.APPLIED;
        }

        private Stored find(String organisation, long idHi, long idLo) {
            for (Stored stored : events) {
                if (stored.is(organisation, idHi, idLo)) {
                    return stored;
                }
            }
            return null;
        }

        private int referenceIndex(byte[] reference) {
            for (int index = 0; index < references.size(); index++) {
                if (Arrays.equals(references.get(index), reference)) {
                    return index;
                }
            }
            return NO_REFERENCE;
        }

        private void insert(Stored event) {
            int low = 0;
            int high = events.size();
            while (low < high) {
                int middle = (low + high) >>> 1;
                if (orderBefore(events.get(middle), event)) {
                    low = middle + 1;
                } else {
                    high = middle;
                }
            }
            events.add(low, event);
        }

        /** Whether {@code left} sorts before {@code right}: by second, then event id. */
        private static boolean orderBefore(Stored left, Stored right) {
            if (left.at() != right.at()) {
                return left.at() < right.at();
            }
            int high = Long.compareUnsigned(left.idHi(), right.idHi());
            return high != 0 ? high < 0 : Long.compareUnsigned(left.idLo(), right.idLo()) < 0;
        }

        /**
         * Of two versions of one event, icsflow keeps the one recorded later,
         * then the one that occurred later, then the greater content (spell
         * reference, stored kind and details, the admission's place, the
         * event it corrects), each absent value before any present one.
         */
        private int compareVersions(JourneyEvent incoming, long at, long recorded, Stored held) {
            int order = Long.compare(recorded, held.recorded());
            if (order == 0) {
                order = Long.compare(at, held.at());
            }
            if (order == 0) {
                byte[] heldReference = held.reference() == NO_REFERENCE ? null : references.get(held.reference());
                order = compareOptional(incoming.reference(), heldReference);
            }
            if (order == 0) {
                order = Integer.compare(incoming.kind(), held.kind());
            }
            if (order == 0) {
                order = Integer.compare(incoming.d1(), held.d1());
            }
            if (order == 0) {
                order = Integer.compare(incoming.d2(), held.d2());
            }
            if (order == 0) {
                order = Integer.compare(incoming.d3(), held.d3());
            }
            if (order == 0 && incoming.kind() == Kind.ADMITTED) {
                // out_of_area is the all-zero place code: before every place.
                order = placeOrder(incoming.place()).compareTo(placeOrder(held.place()));
            }
            if (order == 0) {
                Correction heldCorrects = null;
                for (Correction correction : corrections) {
                    if (correction.organisation().equals(held.organisation())
                            && correction.byHi() == held.idHi() && correction.byLo() == held.idLo()) {
                        heldCorrects = correction;
                        break;
                    }
                }
                if (!incoming.hasCorrects() || heldCorrects == null) {
                    order = Boolean.compare(incoming.hasCorrects(), heldCorrects != null);
                } else {
                    order = Long.compareUnsigned(incoming.correctsHi(), heldCorrects.correctedHi());
                    if (order == 0) {
                        order = Long.compareUnsigned(incoming.correctsLo(), heldCorrects.correctedLo());
                    }
                }
            }
            return order;
        }

        private static String placeOrder(String place) {
            return Events.Reference.OUT_OF_AREA.equals(place) ? "" : place;
        }

        private static int compareOptional(byte[] left, byte[] right) {
            if (left == null || right == null) {
                return Boolean.compare(left != null, right != null);
            }
            return Arrays.compareUnsigned(left, right);
        }

        /** journey.rs `active`: the events no correction replaced, in time order. */
        private List<Stored> active() {
            if (corrections.isEmpty()) {
                return events;
            }
            List<Stored> active = new ArrayList<>(events.size());
            for (Stored event : events) {
                boolean replaced = false;
                for (Correction correction : corrections) {
                    if (correction.organisation().equals(event.organisation())
                            && correction.correctedHi() == event.idHi() && correction.correctedLo() == event.idLo()) {
                        replaced = true;
                        break;
                    }
                }
                if (!replaced) {
                    active.add(event);
                }
            }
            return active;
        }

        /** An admission, as spells.rs reads it. */
        private record Admission(long at, int day, int age, int bedType, String place) {
            boolean inSitrepScope() {
                return age >= ADULT_AGE_YEARS && (bedType == Kind.NONE || bedType == GENERAL_AND_ACUTE);
            }
        }

        /** A hospital spell: its trust and reference, and what stands of it. */
        private static final class Spell {
            final String trust;
            final int reference;
            /** Its events are those of its trust and reference from this second (its admission) until the next spell's. */
            final Long from;
            Long until;
            Admission admission;
            boolean cancelled;
            /** The standing discharge (at, day), or null. */
            long[] discharge;
            Long lastCancel;

            Spell(String trust, int reference, Long from) {
                this.trust = trust;
                this.reference = reference;
                this.from = from;
            }

            boolean owns(Stored event) {
                return Kind.feed(event.kind()) == Feed.DISCHARGE
                        && event.organisation().equals(trust)
                        && event.reference() == reference
                        && (from == null || event.at() >= from)
                        && (until == null || event.at() < until);
            }

            /** An admission after a standing discharge, or after this spell's admission was cancelled. */
            boolean begunAgainBy(Stored event) {
                return event.kind() == Kind.ADMITTED && admission != null
                        && (cancelled || (discharge != null && discharge[0] <= event.at()));
            }
        }

        /** spells.rs `collect_spells`, without what no-criteria periods do not read. */
        private List<Spell> spells(List<Stored> active) {
            List<Spell> spells = new ArrayList<>();
            for (Stored event : active) {
                if (Kind.feed(event.kind()) != Feed.DISCHARGE) {
                    continue;
                }
                int latest = -1;
                for (int index = spells.size() - 1; index >= 0; index--) {
                    Spell spell = spells.get(index);
                    if (spell.trust.equals(event.organisation()) && spell.reference == event.reference()) {
                        latest = index;
                        break;
                    }
                }
                Spell spell;
                if (latest >= 0 && !spells.get(latest).begunAgainBy(event)) {
                    spell = spells.get(latest);
                } else {
                    Long from = null;
                    if (latest >= 0) {
                        spells.get(latest).until = event.at();
                        from = event.at();
                    }
                    spell = new Spell(event.organisation(), event.reference(), from);
                    spells.add(spell);
                }
                switch (event.kind()) {
                    case Kind.ADMITTED -> {
                        if (spell.admission == null) {
                            spell.admission = new Admission(event.at(), event.day(), event.d2(), event.d3(), event.place());
                        }
                    }
                    case Kind.ADMISSION_CANCELLED -> spell.cancelled = true;
                    // A cancellation voids every discharge at or before it.
                    case Kind.DISCHARGE_CANCELLED -> {
                        spell.lastCancel = event.at();
                        spell.discharge = null;
                    }
                    case Kind.DISCHARGED -> {
                        if (spell.lastCancel == null || spell.lastCancel < event.at()) {
                            spell.discharge = new long[] {event.at(), event.day()};
                        }
                    }
                    default -> {}
                }
            }
            return spells;
        }

        /**
         * spells.rs `collect_periods`: (start day, end day or null), up to
         * the standing discharge. A no-criteria assessment opens a period at
         * its Discharge Ready Date (its own day when none is given, never
         * before the admission); meeting the criteria again, or the
         * discharge, ends it.
         */
        private static List<long[]> periods(List<Stored> active, Spell spell) {
            List<long[]> periods = new ArrayList<>();
            Long open = null;
            for (Stored event : active) {
                if (!spell.owns(event)) {
                    continue;
                }
                if (spell.discharge != null && event.at() > spell.discharge[0]) {
                    break;
                }
                if (event.kind() == Kind.CRITERIA_NOT_MET && open == null) {
                    long ready = event.d1() == Kind.NONE ? event.day() : event.d1();
                    open = Math.max(ready, spell.admission.day());
                } else if (event.kind() == Kind.CRITERIA_MET && open != null) {
                    periods.add(new long[] {open, event.day(), 0});
                    open = null;
                }
            }
            if (open != null) {
                periods.add(spell.discharge == null ? new long[] {open, Long.MAX_VALUE, 0}
                        : new long[] {open, spell.discharge[1], 1});
            }
            return periods;
        }

        /**
         * derive.rs's steps of metric 1 summed per place: +1 on each
         * no-criteria period's first day and -1 on the day it ends, for every
         * admitted, uncancelled spell of an adult in a general and acute bed.
         * Keyed "PLACE@DAY" (days since 1970).
         */
        Map<String, Integer> notMeetingCriteriaSteps() {
            Map<String, Integer> steps = new TreeMap<>();
            List<Stored> active = active();
            for (Spell spell : spells(active)) {
                if (spell.admission == null || spell.cancelled || !spell.admission.inSitrepScope()) {
                    continue;
                }
                for (long[] period : periods(active, spell)) {
                    long start = period[0];
                    long end = period[1];
                    // A period ending the day it starts holds no day in hospital.
                    if (end <= start) {
                        continue;
                    }
                    steps.merge(spell.admission.place() + "@" + start, 1, Integer::sum);
                    if (end != Long.MAX_VALUE) {
                        steps.merge(spell.admission.place() + "@" + end, -1, Integer::sum);
                    }
                }
            }
            return steps;
        }

        byte[] encode() {
            try {
                ByteArrayOutputStream bytes = new ByteArrayOutputStream(64 + 56 * events.size());
                DataOutputStream out = new DataOutputStream(bytes);
                out.writeByte(VERSION);
                out.writeShort(references.size());
                for (byte[] reference : references) {
                    out.write(reference);
                }
                out.writeShort(corrections.size());
                for (Correction correction : corrections) {
                    out.writeUTF(correction.organisation());
                    out.writeLong(correction.correctedHi());
                    out.writeLong(correction.correctedLo());
                    out.writeLong(correction.byHi());
                    out.writeLong(correction.byLo());
                }
                out.writeShort(events.size());
                for (Stored event : events) {
                    out.writeLong(event.idHi());
                    out.writeLong(event.idLo());
                    out.writeLong(event.at());
                    out.writeLong(event.recorded());
                    out.writeInt(event.day());
                    out.writeUTF(event.organisation());
                    // 0-254, or 255 for no reference (REFERENCE_LIMIT keeps 255 free).
                    out.writeByte(event.reference() == NO_REFERENCE ? 255 : event.reference());
                    out.writeByte(event.kind());
                    out.writeInt(event.d1());
                    out.writeInt(event.d2());
                    out.writeInt(event.d3());
                    if (event.kind() == Kind.ADMITTED) {
                        out.writeUTF(event.place());
                    }
                }
                return bytes.toByteArray();
            } catch (IOException impossible) {
                throw new UncheckedIOException(impossible);
            }
        }

        static Journey decode(byte[] bytes) {
            try {
                DataInputStream in = new DataInputStream(new java.io.ByteArrayInputStream(bytes));
                if (in.readByte() != VERSION) {
                    throw new IllegalStateException("a journey of another version");
                }
                Journey journey = new Journey();
                for (int count = in.readShort(); count > 0; count--) {
                    byte[] reference = new byte[32];
                    in.readFully(reference);
                    journey.references.add(reference);
                }
                for (int count = in.readShort(); count > 0; count--) {
                    journey.corrections.add(new Correction(in.readUTF(), in.readLong(), in.readLong(),
                            in.readLong(), in.readLong()));
                }
                for (int count = in.readShort(); count > 0; count--) {
                    long idHi = in.readLong();
                    long idLo = in.readLong();
                    long at = in.readLong();
                    long recorded = in.readLong();
                    int day = in.readInt();
                    String organisation = in.readUTF();
                    int reference = in.readUnsignedByte();
                    reference = reference == 255 ? NO_REFERENCE : reference;
                    int kind = in.readByte();
                    int d1 = in.readInt();
                    int d2 = in.readInt();
                    int d3 = in.readInt();
                    String place = kind == Kind.ADMITTED ? in.readUTF() : null;
                    journey.events.add(new Stored(idHi, idLo, at, recorded, day, organisation, reference, kind,
                            d1, d2, d3, place));
                }
                return journey;
            } catch (IOException corrupt) {
                throw new UncheckedIOException("a journey that does not decode", corrupt);
            }
        }
    }

    static long processCpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean())
                .getProcessCpuTime();
    }

    private static String seconds(long nanos) {
        return String.format(Locale.ROOT, "%.3f", nanos / 1e9);
    }

    private static String describe(Progress progress, KafkaStreams.State state) {
        return String.format(Locale.ROOT, "%d partner records, %d accepted, %d dead-lettered, %d joined (%s)",
                progress.partnerRecords.get(), progress.accepted.sum(), progress.rejected.sum(),
                progress.joined.sum(), state);
    }

    private static void log(String line) {
        System.err.println("icsflow-streams: " + line);
    }
}
