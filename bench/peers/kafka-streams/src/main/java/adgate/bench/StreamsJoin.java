package adgate.bench;

import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.JoinWindows;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KeyValueMapper;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Named;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Repartitioned;
import org.apache.kafka.streams.kstream.StreamJoined;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.kstream.WindowedSerdes;
import org.apache.kafka.streams.processor.TimestampExtractor;
import org.apache.kafka.streams.processor.api.FixedKeyProcessor;
import org.apache.kafka.streams.processor.api.FixedKeyProcessorContext;
import org.apache.kafka.streams.processor.api.FixedKeyRecord;
import org.apache.kafka.streams.state.Stores;
import org.apache.kafka.streams.state.WindowStore;
import org.apache.kafka.streams.state.WindowStoreIterator;

/**
 * adgate's correlator joins, as a small Kafka Streams application: the peer of the correlator in
 * the bench (bench/lib/streams-peer.ts). Reads the four event topics (Confluent wire format: a
 * 5-byte header, then Avro binary of schemas/*.avsc), sets late events aside and drops duplicate
 * event ids by adgate's rules (see DecodeDedup), joins
 * impression→bid by auction id (0 ≤ Δ ≤ 10 min), click→impression by impression id (0 ≤ Δ ≤ 30 min)
 * and conversion→click by click id (0 ≤ Δ ≤ 7 days), all with 5 min grace, by event time, and
 * counts per campaign and event-time minute (bids, wins, impressions, spend, clicks, valid clicks,
 * conversions, conversion value) into a windowed aggregate written to an output topic.
 *
 * <p>Stops by itself once every input record (N, given) is processed and every repartitioned
 * record has come back, then closes (a final commit). Prints FIRST when the first record is
 * decoded and DONE {json} after the close, then waits for stdin to close, so the bench can read
 * its CPU and peak RSS from /proc.
 *
 * <p>Usage: StreamsJoin bootstrap prefix applicationId schemasDir expectedRecords
 * exactly_once_v2|at_least_once stateDir outputTopic [streams.property=value…]; with
 * -Dadgate.dump=FILE it also writes each attributed conversion's event id there (the bench diffs
 * them with adgate's).
 */
public final class StreamsJoin {
  static final long MINUTE = 60_000L;
  static final Duration GRACE = Duration.ofMinutes(5);
  /** How long an event id is remembered to drop its duplicates. */
  static final Duration DEDUP = Duration.ofMinutes(30);

  static final byte BID = 0;
  static final byte IMPRESSION = 1;
  static final byte CLICK = 2;
  static final byte CONVERSION = 3;
  static final String[] NAMES = {"bids", "impressions", "clicks", "conversions"};
  // The writer schemas the gateway writes today (bids: OpenRTB 2.6, v2). The auction id is the
  // record key, so bids need no field of the request.
  static final String[] FILES = {"bid.v2.avsc", "impression.v1.avsc", "click.v1.avsc", "conversion.v1.avsc"};
  static final String[][] NEEDED = {
    {"event_id", "event_time", "campaign_id", "bid_price_micros"},
    {"event_id", "event_time", "impression_id", "auction_id", "campaign_id", "cost_micros"},
    {"event_id", "event_time", "click_id", "impression_id", "campaign_id", "user_agent"},
    {"event_id", "event_time", "conversion_id", "click_id", "campaign_id", "value_micros"},
  };
  static final String[] BOT_AGENTS = {
    "bot", "crawler", "spider", "python-requests", "curl/", "wget/", "headlesschrome", "phantomjs",
    "go-http-client", "java/", "okhttp",
  };

  // Progress, for stopping when done and for the report (one stream thread by default, but
  // atomics keep it right with more).
  static final AtomicLong consumed = new AtomicLong();
  static final AtomicLong duplicates = new AtomicLong();
  static final AtomicLong late = new AtomicLong();
  static final AtomicLong wins = new AtomicLong();
  static final AtomicLong clicksJoined = new AtomicLong();
  static final AtomicLong clicksValid = new AtomicLong();
  static final AtomicLong conversionsJoined = new AtomicLong();
  static final AtomicLong[] sent = {new AtomicLong(), new AtomicLong(), new AtomicLong()};
  static final AtomicLong[] received = {new AtomicLong(), new AtomicLong(), new AtomicLong()};
  static volatile boolean first = true;

  /** The fields the joins use, of any of the four types. */
  record Ev(byte type, String eventId, String ref, String campaign, long time, long amount, boolean bot) {}

  static final Serde<Ev> EV = Serdes.serdeFrom(
      (Serializer<Ev>) (topic, e) -> {
        byte[] id = bytes(e.eventId), ref = bytes(e.ref), c = bytes(e.campaign);
        ByteBuffer b = ByteBuffer.allocate(2 + 12 + size(id) + size(ref) + size(c) + 16);
        b.put(e.type).put((byte) (e.bot ? 1 : 0));
        put(b, id);
        put(b, ref);
        put(b, c);
        return b.putLong(e.time).putLong(e.amount).array();
      },
      (Deserializer<Ev>) (topic, data) -> {
        ByteBuffer b = ByteBuffer.wrap(data);
        byte type = b.get();
        boolean bot = b.get() == 1;
        return new Ev(type, get(b), get(b), get(b), b.getLong(), b.getLong(), bot);
      });

  static byte[] bytes(String s) {
    return s == null ? null : s.getBytes(StandardCharsets.UTF_8);
  }

  static void put(ByteBuffer b, byte[] s) {
    if (s == null) b.putInt(-1);
    else b.putInt(s.length).put(s);
  }

  static int size(byte[] s) {
    return s == null ? 0 : s.length;
  }

  static String get(ByteBuffer b) {
    int n = b.getInt();
    if (n < 0) return null;
    String s = new String(b.array(), b.position(), n, StandardCharsets.UTF_8);
    b.position(b.position() + n);
    return s;
  }

  /** Per campaign and minute: bids, wins, impressions, spend, clicks, valid clicks, conversions, value. */
  static final int FIELDS = 8;

  static final Serde<long[]> COUNTS = Serdes.serdeFrom(
      (Serializer<long[]>) (topic, v) -> {
        ByteBuffer b = ByteBuffer.allocate(8 * FIELDS);
        for (long x : v) b.putLong(x);
        return b.array();
      },
      (Deserializer<long[]>) (topic, data) -> {
        ByteBuffer b = ByteBuffer.wrap(data);
        long[] v = new long[FIELDS];
        for (int i = 0; i < FIELDS; i++) v[i] = b.getLong();
        return v;
      });

  static long[] delta(int field, long amountField, long amount) {
    long[] v = new long[FIELDS];
    v[field] = 1;
    if (amountField >= 0) v[(int) amountField] = amount;
    return v;
  }

  /**
   * Event time from the value without decoding it all: event_id (a string) then event_time (a
   * long) are the first two fields of every schema.
   */
  static final class EventTime implements TimestampExtractor {
    @Override
    public long extract(ConsumerRecord<Object, Object> r, long partitionTime) {
      byte[] v = (byte[]) r.value();
      if (v == null || v.length < 6 || v[0] != 0) {
        consumed.incrementAndGet(); // dropped by Kafka Streams (negative time), as undecodable
        return -1;
      }
      int[] pos = {5};
      long len = varlong(v, pos);
      pos[0] += (int) len;
      return varlong(v, pos);
    }

    static long varlong(byte[] b, int[] pos) {
      long n = 0;
      int shift = 0;
      int i = pos[0];
      byte x;
      do {
        x = b[i++];
        n |= (long) (x & 0x7f) << shift;
        shift += 7;
      } while ((x & 0x80) != 0);
      pos[0] = i;
      return (n >>> 1) ^ -(n & 1);
    }
  }

  /**
   * Decodes the join fields (Avro schema resolution skips the rest), sets late events aside and
   * drops duplicate event ids, by adgate's rules: an event more than GRACE older than the newest
   * event before it on its input partition is late (never joined or counted); a duplicate is
   * dropped. Lateness first: Kafka Streams' own join would take a conversion hours behind (it only
   * drops what is older than stream time − window − grace, 7 days for conversions), and the dedup
   * store forgets ids older than stream time − DEDUP, so a late duplicate would count twice.
   * One instance per task, so `newest` is per input partition; it is not restored after a crash
   * (the bench never crashes the peer; a KeyValueStore written per record would cost it CPU).
   */
  static final class DecodeDedup implements FixedKeyProcessor<String, byte[], Ev> {
    private final byte type;
    private final String store;
    private final GenericDatumReader<GenericRecord> reader;
    private BinaryDecoder decoder;
    private GenericRecord reuse;
    private FixedKeyProcessorContext<String, Ev> context;
    private WindowStore<String, Long> seen;
    private long newest = Long.MIN_VALUE;

    DecodeDedup(byte type, Schema writer, Schema reader) {
      this.type = type;
      this.store = "dedup-" + NAMES[type];
      this.reader = new GenericDatumReader<>(writer, reader);
    }

    @Override
    public void init(FixedKeyProcessorContext<String, Ev> context) {
      this.context = context;
      this.seen = context.getStateStore(store);
    }

    @Override
    public void process(FixedKeyRecord<String, byte[]> r) {
      if (first) {
        first = false;
        System.out.println("FIRST");
        System.out.flush();
      }
      consumed.incrementAndGet();
      byte[] v = r.value();
      try {
        decoder = DecoderFactory.get().binaryDecoder(v, 5, v.length - 5, decoder);
        reuse = reader.read(reuse, decoder);
      } catch (IOException | RuntimeException e) {
        return; // undecodable: skipped, as the correlator counts and skips it
      }
      Ev e = event(reuse);
      long t = r.timestamp();
      if (newest != Long.MIN_VALUE && t < newest - GRACE.toMillis()) {
        late.incrementAndGet();
        return;
      }
      if (t > newest) newest = t;
      try (WindowStoreIterator<Long> it = seen.fetch(e.eventId(), t - DEDUP.toMillis(), t + DEDUP.toMillis())) {
        if (it.hasNext()) {
          duplicates.incrementAndGet();
          return;
        }
      }
      seen.put(e.eventId(), t, t);
      context.forward(r.withValue(e));
    }

    private Ev event(GenericRecord g) {
      String id = g.get("event_id").toString();
      long time = (Long) g.get("event_time");
      switch (type) {
        case BID:
          return new Ev(type, id, null, str(g.get("campaign_id")), time, (Long) g.get("bid_price_micros"), false);
        case IMPRESSION:
          return new Ev(type, id, g.get("impression_id").toString(), g.get("campaign_id").toString(), time,
              (Long) g.get("cost_micros"), false);
        case CLICK:
          return new Ev(type, id, g.get("click_id").toString(), g.get("campaign_id").toString(), time, 0,
              isBot(str(g.get("user_agent"))));
        default:
          return new Ev(type, id, null, g.get("campaign_id").toString(), time, (Long) g.get("value_micros"), false);
      }
    }
  }

  /** With -Dadgate.dump=FILE: one line per join output (kind, event id, its time, partner time), for diffs. */
  static final PrintStream DUMP = openDump();

  static PrintStream openDump() {
    String f = System.getProperty("adgate.dump");
    if (f == null) return null;
    try {
      return new PrintStream(new FileOutputStream(f), true, StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static void dump(String kind, Ev e, Ev partner) {
    if (DUMP != null) DUMP.println(kind + " " + e.eventId() + " " + e.time() + " " + partner.time());
  }

  static String str(Object o) {
    return o == null ? null : o.toString();
  }

  static boolean isBot(String ua) {
    if (ua == null) return false;
    String s = ua.toLowerCase(Locale.ROOT);
    for (String b : BOT_AGENTS) if (s.contains(b)) return true;
    return false;
  }

  /** Moves a record to another event time (a win counts in its bid's minute). */
  static final class AtTime implements FixedKeyProcessor<String, Ev, Ev> {
    private FixedKeyProcessorContext<String, Ev> context;

    @Override
    public void init(FixedKeyProcessorContext<String, Ev> context) {
      this.context = context;
    }

    @Override
    public void process(FixedKeyRecord<String, Ev> r) {
      context.forward(r.withTimestamp(r.value().time()));
    }
  }

  static Schema projection(Schema writer, String[] fields) {
    List<Schema.Field> kept = new ArrayList<>();
    for (String name : fields) {
      Schema.Field f = writer.getField(name);
      kept.add(new Schema.Field(f.name(), f.schema(), f.doc(), f.defaultVal()));
    }
    return Schema.createRecord(writer.getName(), writer.getDoc(), writer.getNamespace(), false, kept);
  }

  static KStream<String, Ev> source(StreamsBuilder b, String prefix, byte type, File schemas) throws IOException {
    Schema writer = new Schema.Parser().parse(new File(schemas, FILES[type]));
    Schema reader = projection(writer, NEEDED[type]);
    String store = "dedup-" + NAMES[type];
    b.addStateStore(Stores.windowStoreBuilder(
        Stores.persistentWindowStore(store, DEDUP, DEDUP, false), Serdes.String(), Serdes.Long()));
    return b.stream(prefix + "adgate." + NAMES[type],
            Consumed.with(Serdes.String(), Serdes.ByteArray()).withTimestampExtractor(new EventTime()))
        .processValues(() -> new DecodeDedup(type, writer, reader), Named.as("decode-dedup-" + NAMES[type]), store);
  }

  /** selectKey + an explicit repartition, counted on both sides to know when all came back. */
  static KStream<String, Ev> rekey(KStream<String, Ev> s, int i, String name,
      KeyValueMapper<String, Ev, String> key) {
    return s.selectKey(key)
        .peek((k, v) -> sent[i].incrementAndGet())
        .repartition(Repartitioned.with(Serdes.String(), EV).withName(name))
        .peek((k, v) -> received[i].incrementAndGet());
  }

  static JoinWindows window(Duration maxAfterPartner) {
    // this.time − other.time ∈ [0, window]
    return JoinWindows.ofTimeDifferenceAndGrace(maxAfterPartner, GRACE).after(Duration.ZERO);
  }

  public static void main(String[] args) throws Exception {
    if (args.length < 8) {
      System.err.println("usage: StreamsJoin bootstrap prefix applicationId schemasDir expectedRecords "
          + "exactly_once_v2|at_least_once stateDir outputTopic [streams.property=value…]");
      System.exit(2);
    }
    String bootstrap = args[0], prefix = args[1], app = args[2];
    File schemas = new File(args[3]);
    long expected = Long.parseLong(args[4]);
    String guarantee = args[5];
    long started = System.currentTimeMillis();

    StreamsBuilder b = new StreamsBuilder();
    KStream<String, Ev> bids = source(b, prefix, BID, schemas);
    KStream<String, Ev> imps = source(b, prefix, IMPRESSION, schemas);
    KStream<String, Ev> clicks = source(b, prefix, CLICK, schemas);
    KStream<String, Ev> convs = source(b, prefix, CONVERSION, schemas);

    // 1. impression → bid, both keyed by auction id: a win, counted in the bid's minute.
    KStream<String, Ev> won = imps.join(bids, (imp, bid) -> bid, window(Duration.ofMinutes(10)),
            StreamJoined.with(Serdes.String(), EV, EV).withName("auction-join").withStoreName("auction-join"))
        .peek((k, v) -> wins.incrementAndGet())
        .processValues(AtTime::new, Named.as("at-bid-time"));

    // 2. click → impression by impression id (impressions re-keyed; clicks are keyed by it).
    KStream<String, Ev> impsById = rekey(imps, 0, "impressions-by-id", (k, v) -> v.ref());
    KStream<String, Ev> valid = clicks.join(impsById,
            (click, imp) -> click.time() - imp.time() >= 1000 && !click.bot() ? click : null,
            window(Duration.ofMinutes(30)),
            StreamJoined.with(Serdes.String(), EV, EV).withName("click-join").withStoreName("click-join"))
        .peek((k, v) -> clicksJoined.incrementAndGet())
        .filter((k, v) -> v != null)
        .peek((k, v) -> clicksValid.incrementAndGet());

    // 3. conversion → click by click id (clicks re-keyed; conversions are keyed by it).
    KStream<String, Ev> clicksById = rekey(clicks, 1, "clicks-by-id", (k, v) -> v.ref());
    KStream<String, Ev> attributed = convs.join(clicksById, (conv, click) -> {
              dump("conversion", conv, click);
              return conv;
            }, window(Duration.ofDays(7)),
            StreamJoined.with(Serdes.String(), EV, EV).withName("conversion-join").withStoreName("conversion-join"))
        .peek((k, v) -> conversionsJoined.incrementAndGet());

    // Per campaign and minute of each event's own time.
    // Per campaign and minute of each event's own time: re-keyed by campaign, one windowed aggregate.
    KStream<String, long[]> byCampaign = bids.filter((k, v) -> v.campaign() != null)
        .map((k, v) -> KeyValue.pair(v.campaign(), delta(0, -1, 0)))
        .merge(won.filter((k, v) -> v.campaign() != null)
            .map((k, v) -> KeyValue.pair(v.campaign(), delta(1, -1, 0))))
        .merge(imps.map((k, v) -> KeyValue.pair(v.campaign(), delta(2, 3, v.amount()))))
        .merge(clicks.map((k, v) -> KeyValue.pair(v.campaign(), delta(4, -1, 0))))
        .merge(valid.map((k, v) -> KeyValue.pair(v.campaign(), delta(5, -1, 0))))
        .merge(attributed.map((k, v) -> KeyValue.pair(v.campaign(), delta(6, 7, v.amount()))));
    byCampaign
        .peek((k, v) -> sent[2].incrementAndGet())
        .repartition(Repartitioned.with(Serdes.String(), COUNTS).withName("by-campaign"))
        .peek((k, v) -> received[2].incrementAndGet())
        .groupByKey(Grouped.with(Serdes.String(), COUNTS))
        // One repartition topic merges every input's deltas; read from offset 0, they are not in
        // time order (a conversion hours ahead of the bids can come first), and wins move back to
        // their bid's minute. A grace longer than the data keeps every count, as adgate's restated
        // counters do; 15 min here dropped a random few thousand.
        .windowedBy(TimeWindows.ofSizeAndGrace(Duration.ofMinutes(1), Duration.ofDays(1)))
        .aggregate(() -> new long[FIELDS], (k, v, agg) -> {
          for (int i = 0; i < FIELDS; i++) agg[i] += v[i];
          return agg;
        }, Named.as("campaign-minute"), Materialized.<String, long[], WindowStore<Bytes, byte[]>>as("campaign-minute")
            .withKeySerde(Serdes.String()).withValueSerde(COUNTS))
        .toStream()
        .to(args[7],
            Produced.with(WindowedSerdes.timeWindowedSerdeFrom(String.class, MINUTE), COUNTS));

    Properties p = new Properties();
    p.put(StreamsConfig.APPLICATION_ID_CONFIG, app);
    p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, guarantee);
    p.put(StreamsConfig.STATE_DIR_CONFIG, args[6]);
    // Otherwise Kafka Streams' defaults: one stream thread; commits every 100 ms with
    // exactly_once_v2, every 30 s with at_least_once (each commit flushes the RocksDB stores).
    for (int i = 8; i < args.length; i++) {
      int eq = args[i].indexOf('=');
      p.put(args[i].substring(0, eq), args[i].substring(eq + 1));
    }
    KafkaStreams streams = new KafkaStreams(b.build(), p);
    streams.setUncaughtExceptionHandler(e -> {
      e.printStackTrace();
      System.exit(1);
      return null;
    });
    streams.start();

    long deadline = System.currentTimeMillis() + 15 * 60_000;
    for (;;) {
      Thread.sleep(10);
      if (consumed.get() >= expected && sent[0].get() == received[0].get() && sent[1].get() == received[1].get()
          && sent[2].get() == received[2].get()) break;
      if (System.currentTimeMillis() > deadline) {
        System.err.println("StreamsJoin: not done after 15 min: consumed " + consumed.get() + " of " + expected);
        System.exit(1);
      }
    }
    long processed = System.currentTimeMillis();
    streams.close(Duration.ofSeconds(60));
    long closed = System.currentTimeMillis();
    Map<String, Object> out = new HashMap<>();
    out.put("guarantee", guarantee);
    out.put("records", consumed.get());
    out.put("duplicates", duplicates.get());
    out.put("late", late.get());
    out.put("wins", wins.get());
    out.put("clicks_joined", clicksJoined.get());
    out.put("clicks_valid", clicksValid.get());
    out.put("conversions_joined", conversionsJoined.get());
    out.put("repartitioned", sent[0].get() + sent[1].get() + sent[2].get());
    out.put("startup_to_processed_ms", processed - started);
    out.put("close_ms", closed - processed);
    // Also measured from outside by the bench (/proc); here for running it by hand.
    out.put("cpu_ms", ProcessHandle.current().info().totalCpuDuration().map(Duration::toMillis).orElse(-1L));
    System.out.println("DONE " + json(out));
    System.out.flush();
    // Stay until the bench has read /proc (it closes stdin).
    while (System.in.read() >= 0) {}
    System.exit(0);
  }

  static String json(Map<String, Object> m) {
    StringBuilder s = new StringBuilder("{");
    for (Map.Entry<String, Object> e : m.entrySet()) {
      if (s.length() > 1) s.append(',');
      s.append('"').append(e.getKey()).append("\":");
      Object v = e.getValue();
      s.append(v instanceof String ? "\"" + v + "\"" : String.valueOf(v));
    }
    return s.append('}').toString();
  }
}
