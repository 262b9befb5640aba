#include "cairn/edge/outbound_queue.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>

#include "cairn/common/rpc.h"
#include "cairn/common/topics.h"
#include "cairn/edge/agent.h"
#include "cairn/edge/queue_drainer.h"
#include "cairn/edge/record_batch.h"
#include "fake_mqtt_client.h"
#include "test_util.h"

namespace cairn::edge {
namespace {

namespace fs = std::filesystem;
using Kind = QueuedRecord::Kind;

class OutboundQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cairn-queue-test-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<OutboundQueue> Open(uint64_t max_bytes = 1 << 20, uint64_t segment_bytes = 4096) {
    SegmentedLogOptions o;
    o.dir = dir_.string();
    o.max_bytes = max_bytes;
    o.segment_bytes = segment_bytes;
    auto q = OpenSegmentedLogQueue(o);
    EXPECT_TRUE(q.ok()) << (q.ok() ? "" : q.error().message);
    return q.ok() ? std::move(*q) : nullptr;
  }

  static uint64_t Append(OutboundQueue& q, const std::string& payload, const std::string& topic = "t/a") {
    auto seq = q.Append(Kind::kStreamRecord, topic, "", payload);
    EXPECT_TRUE(seq.ok()) << (seq.ok() ? "" : seq.error().message);
    return seq.ok() ? *seq : 0;
  }

  static std::vector<std::string> PeekPayloads(OutboundQueue& q, size_t n = 100000) {
    auto recs = q.Peek(n, 1 << 30);
    EXPECT_TRUE(recs.ok());
    std::vector<std::string> out;
    for (auto& r : *recs) out.push_back(r.payload);
    return out;
  }

  std::vector<fs::path> Segments() const {
    std::vector<fs::path> out;
    for (auto& e : fs::directory_iterator(dir_)) {
      if (e.path().extension() == ".seg") out.push_back(e.path());
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  fs::path dir_;
};

TEST_F(OutboundQueueTest, ServesRecordsInOrderUntilAcked) {
  auto q = Open();
  EXPECT_EQ(Append(*q, "one"), 1u);
  EXPECT_EQ(Append(*q, "two"), 2u);
  EXPECT_EQ(Append(*q, "three"), 3u);
  EXPECT_EQ(PeekPayloads(*q), (std::vector<std::string>{"one", "two", "three"}));
  EXPECT_EQ(PeekPayloads(*q, 2), (std::vector<std::string>{"one", "two"}));  // peek does not remove
  ASSERT_TRUE(q->Ack(2).ok());
  EXPECT_EQ(PeekPayloads(*q), (std::vector<std::string>{"three"}));
  EXPECT_EQ(q->Stats().depth, 1u);
  ASSERT_TRUE(q->Ack(3).ok());
  EXPECT_EQ(q->Stats().depth, 0u);
  EXPECT_EQ(q->Stats().bytes, 0u);
  EXPECT_TRUE(PeekPayloads(*q).empty());
}

TEST_F(OutboundQueueTest, KeepsRecordKindTopicAndContentType) {
  auto q = Open();
  ASSERT_TRUE(q->Append(Kind::kMessage, "cairn/v1/ws/w/nodes/n/health", "cairn.v1.NodeHealth", "pb").ok());
  auto recs = q->Peek(10, 1000);
  ASSERT_TRUE(recs.ok());
  ASSERT_EQ(recs->size(), 1u);
  EXPECT_EQ((*recs)[0].kind, Kind::kMessage);
  EXPECT_EQ((*recs)[0].topic, "cairn/v1/ws/w/nodes/n/health");
  EXPECT_EQ((*recs)[0].content_type, "cairn.v1.NodeHealth");
  EXPECT_EQ((*recs)[0].payload, "pb");
}

TEST_F(OutboundQueueTest, KeepsOrderAndSequenceAcrossRestartsAndSegments) {
  {
    auto q = Open();
    for (int i = 1; i <= 300; ++i) Append(*q, "record " + std::to_string(i));
    ASSERT_TRUE(q->Ack(100).ok());
  }
  EXPECT_GT(Segments().size(), 2u);  // 4 KiB segments: the records span several
  {
    auto q = Open();
    EXPECT_EQ(q->Stats().depth, 200u);
    auto p = PeekPayloads(*q);
    ASSERT_EQ(p.size(), 200u);
    for (int i = 0; i < 200; ++i) ASSERT_EQ(p[i], "record " + std::to_string(101 + i));
    EXPECT_EQ(Append(*q, "record 301"), 301u);
    ASSERT_TRUE(q->Ack(301).ok());
  }
  {
    // Empty now, but the sequence goes on.
    auto q = Open();
    EXPECT_EQ(q->Stats().depth, 0u);
    EXPECT_EQ(Append(*q, "after"), 302u);
  }
  EXPECT_LE(Segments().size(), 2u);  // acked segments are deleted
}

TEST_F(OutboundQueueTest, PeekStopsAtTheByteBudgetButReturnsAtLeastOneRecord) {
  auto q = Open();
  Append(*q, std::string(100, 'a'));
  Append(*q, std::string(100, 'b'));
  Append(*q, std::string(100, 'c'));
  EXPECT_EQ(PeekPayloads(*q).size(), 3u);
  auto r = q->Peek(10, 250);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), 2u);
  r = q->Peek(10, 1);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), 1u);
}

TEST_F(OutboundQueueTest, ServesARecordLargerThanTheReadChunk) {
  auto q = Open(4 << 20, 1 << 20);
  std::string big(300 * 1024, 'x');
  Append(*q, "small");
  Append(*q, big);
  auto r = q->Peek(10, 10);  // budget reached after the first: one record
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 1u);
  ASSERT_TRUE(q->Ack(1).ok());
  r = q->Peek(10, 10);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].payload, big);
}

TEST_F(OutboundQueueTest, DiscardsATornTailOnOpenAndAppendsAfterTheLastWholeRecord) {
  {
    auto q = Open();
    Append(*q, "one");
    Append(*q, "two");
    Append(*q, "three");
  }
  auto seg = Segments().back();
  auto size = fs::file_size(seg);
  fs::resize_file(seg, size - 2);  // the last record is cut short, as by a crash mid-write
  {
    auto q = Open();
    EXPECT_EQ(PeekPayloads(*q), (std::vector<std::string>{"one", "two"}));
    EXPECT_EQ(Append(*q, "three again"), 3u);
  }
  auto q = Open();
  EXPECT_EQ(PeekPayloads(*q), (std::vector<std::string>{"one", "two", "three again"}));
}

TEST_F(OutboundQueueTest, NeverServesARecordWhoseBytesWereDamaged) {
  {
    auto q = Open();
    Append(*q, "one");
    Append(*q, "two");
    Append(*q, "three");
  }
  auto seg = Segments().back();
  {
    // Flip one byte inside the second record's payload.
    std::fstream f(seg, std::ios::in | std::ios::out | std::ios::binary);
    std::string data((std::istreambuf_iterator<char>(f)), {});
    auto pos = data.find("two");
    ASSERT_NE(pos, std::string::npos);
    f.seekp(static_cast<std::streamoff>(pos));
    f.put('T');
  }
  auto q = Open();
  EXPECT_EQ(PeekPayloads(*q), (std::vector<std::string>{"one"}));
  EXPECT_EQ(q->Stats().depth, 1u);
}

TEST_F(OutboundQueueTest, SkipsTheDamagedRestOfAnOlderSegmentAndCountsWhatWasLost) {
  {
    auto q = Open();
    for (int i = 1; i <= 300; ++i) Append(*q, "record " + std::to_string(i));
  }
  auto segs = Segments();
  ASSERT_GE(segs.size(), 3u);
  const uint64_t second_first = std::stoull(segs[1].stem().string());
  {
    std::fstream f(segs[0], std::ios::in | std::ios::out | std::ios::binary);
    std::string data((std::istreambuf_iterator<char>(f)), {});
    auto pos = data.find("record 10");
    ASSERT_NE(pos, std::string::npos);
    f.seekp(static_cast<std::streamoff>(pos));
    f.put('R');
  }
  auto q = Open();
  auto p = PeekPayloads(*q);
  ASSERT_EQ(p.size(), 9u + (300 - second_first + 1));
  EXPECT_EQ(p[8], "record 9");
  EXPECT_EQ(p[9], "record " + std::to_string(second_first));  // resumes with the next segment
  EXPECT_EQ(p.back(), "record 300");
  EXPECT_EQ(q->Stats().corrupt, second_first - 10);
  EXPECT_EQ(q->Stats().depth, p.size());
  EXPECT_EQ(Append(*q, "record 301"), 301u);
}

TEST_F(OutboundQueueTest, DiscardsGarbageAppendedAfterTheLastRecord) {
  {
    auto q = Open();
    Append(*q, "one");
  }
  {
    std::ofstream f(Segments().back(), std::ios::app | std::ios::binary);
    f << std::string(64, '\0') << "garbage";
  }
  auto q = Open();
  EXPECT_EQ(PeekPayloads(*q), (std::vector<std::string>{"one"}));
  EXPECT_EQ(Append(*q, "two"), 2u);
  EXPECT_EQ(PeekPayloads(*q), (std::vector<std::string>{"one", "two"}));
}

TEST_F(OutboundQueueTest, DropsTheOldestRecordsWhenFullAndCountsThem) {
  // Each record: 20 header + 4 body prefix + 3 topic + 100 payload = 127 bytes.
  auto q = Open(/*max_bytes=*/127 * 10, /*segment_bytes=*/127 * 4);
  for (int i = 1; i <= 25; ++i) {
    std::string p = std::to_string(i);
    p.resize(100, '.');
    Append(*q, p);
  }
  QueueStats s = q->Stats();
  EXPECT_EQ(s.depth, 10u);
  EXPECT_EQ(s.dropped, 15u);
  EXPECT_EQ(s.bytes, 127u * 10);
  auto p = PeekPayloads(*q);
  ASSERT_EQ(p.size(), 10u);
  EXPECT_EQ(p.front().substr(0, 2), "16");
  EXPECT_EQ(p.back().substr(0, 2), "25");
  // The drop survives a restart.
  q.reset();
  q = Open(127 * 10, 127 * 4);
  EXPECT_EQ(q->Stats().depth, 10u);
  EXPECT_EQ(PeekPayloads(*q).front().substr(0, 2), "16");
}

TEST_F(OutboundQueueTest, LosesNoStoredRecordWhenTheWriterIsKilledMidStream) {
  // A child appends until it is killed with SIGKILL; every record it was
  // told was stored must come back, whole and in order.
  auto* stored = static_cast<std::atomic<uint64_t>*>(
      ::mmap(nullptr, sizeof(std::atomic<uint64_t>), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(stored, MAP_FAILED);
  new (stored) std::atomic<uint64_t>(0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto q = Open(64 << 20, 64 << 10);
    for (uint64_t i = 1;; ++i) {
      if (!q || !q->Append(Kind::kStreamRecord, "t/a", "", "record " + std::to_string(i)).ok()) ::_exit(1);
      stored->store(i);
    }
  }
  ASSERT_TRUE(testutil::WaitUntil([&] { return stored->load() >= 20000; }, std::chrono::seconds(30)));
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  const uint64_t confirmed = stored->load();
  ::munmap(stored, sizeof(std::atomic<uint64_t>));

  auto q = Open(64 << 20, 64 << 10);
  auto p = PeekPayloads(*q, 1 << 30);
  ASSERT_GE(p.size(), confirmed);
  ASSERT_LE(p.size(), confirmed + 1);  // one more may have been written before the counter moved
  for (size_t i = 0; i < p.size(); ++i) ASSERT_EQ(p[i], "record " + std::to_string(i + 1));
  EXPECT_EQ(q->Stats().next_seq, p.size() + 1);
}

TEST_F(OutboundQueueTest, RefusesARecordLargerThanTheWholeQueue) {
  auto q = Open(/*max_bytes=*/4096, 4096);
  auto r = q->Append(Kind::kStreamRecord, "t", "", std::string(5000, 'x'));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(q->Stats().depth, 0u);
}

TEST_F(OutboundQueueTest, SyncSucceedsAndWaitForRecordsSeesAnAppend) {
  auto q = Open();
  EXPECT_FALSE(q->WaitForRecords(std::chrono::milliseconds(1)));
  std::thread t([&] { Append(*q, "x"); });
  EXPECT_TRUE(q->WaitForRecords(std::chrono::seconds(5)));
  t.join();
  EXPECT_TRUE(q->Sync().ok());
}

TEST_F(OutboundQueueTest, AnInterruptGivenBeforeTheWaitIsNotLost) {
  auto q = Open();
  q->Interrupt();
  // Kept until a wait sees it: this one returns at once, not after an hour.
  EXPECT_FALSE(q->WaitForRecords(std::chrono::hours(1)));
  EXPECT_FALSE(q->WaitForRecords(std::chrono::milliseconds(1)));  // and only once
}

TEST(HoldBackStreamRecord, WaitsPastThreeQuartersOnlyWhileTheLinkIsUp) {
  EXPECT_FALSE(HoldBackStreamRecord(0, 1000, true));
  EXPECT_FALSE(HoldBackStreamRecord(749, 1000, true));
  EXPECT_TRUE(HoldBackStreamRecord(750, 1000, true));
  EXPECT_TRUE(HoldBackStreamRecord(5000, 1000, true));
  EXPECT_FALSE(HoldBackStreamRecord(750, 1000, false));  // offline: fill, then drop the oldest
  EXPECT_FALSE(HoldBackStreamRecord(999, 1000, false));
}

TEST(Crc32c, MatchesTheStandardCheckValue) {
  EXPECT_EQ(Crc32c(0, "123456789", 9), 0xE3069283u);
}

// The bitwise definition, to check the sliced form against.
uint32_t BitwiseCrc32c(const std::string& s) {
  uint32_t crc = ~0u;
  for (unsigned char ch : s) {
    crc ^= ch;
    for (int k = 0; k < 8; ++k) crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
  }
  return ~crc;
}

TEST(Crc32c, AgreesWithTheBitwiseDefinitionAtEveryLengthAndSplit) {
  std::string data;
  for (int i = 0; i < 300; ++i) data.push_back(static_cast<char>((i * 131 + 7) & 0xFF));
  for (size_t len = 0; len <= data.size(); ++len) {
    std::string part = data.substr(0, len);
    ASSERT_EQ(Crc32c(0, part.data(), part.size()), BitwiseCrc32c(part)) << "length " << len;
    size_t cut = len / 3;
    ASSERT_EQ(Crc32c(Crc32c(0, part.data(), cut), part.data() + cut, len - cut), BitwiseCrc32c(part))
        << "length " << len << " split at " << cut;
  }
}

TEST(RecordBatch, RoundTripsRecordsWithNewlinesAndEmptyOnes) {
  std::string payload;
  AppendToBatch(payload, 7, "plain");
  AppendToBatch(payload, 8, "two\nlines");
  AppendToBatch(payload, 9, "");
  EXPECT_EQ(payload.substr(0, 10), "7 5\nplain\n");
  auto d = DecodeBatch(payload);
  ASSERT_TRUE(d.ok()) << d.error().message;
  ASSERT_EQ(d->size(), 3u);
  EXPECT_EQ((*d)[1].seq, 8u);
  EXPECT_EQ((*d)[1].record, "two\nlines");
  EXPECT_EQ((*d)[2].record, "");
}

TEST(RecordBatch, RejectsATruncatedPayload) {
  std::string payload;
  AppendToBatch(payload, 1, "hello");
  EXPECT_FALSE(DecodeBatch(payload.substr(0, payload.size() - 2)).ok());
  EXPECT_FALSE(DecodeBatch("x 1\na\n").ok());
}

QueuedRecord Rec(uint64_t seq, const std::string& topic, const std::string& payload,
                 Kind kind = Kind::kStreamRecord) {
  QueuedRecord r;
  r.seq = seq;
  r.topic = topic;
  r.payload = payload;
  r.kind = kind;
  return r;
}

TEST(PackWindow, PacksEachTopicsRecordsIntoOneBatchWithSequenceProperties) {
  DrainerOptions o;
  o.node = "n1";
  auto out = PackWindow({Rec(5, "a", "r5"), Rec(6, "b", "r6"), Rec(7, "a", "r7"),
                         Rec(8, "h", "health", Kind::kMessage)},
                        o);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].message.topic, "a");
  EXPECT_EQ(out[0].message.content_type, kRecordBatchContentType);
  EXPECT_EQ(out[0].message.qos, 1);
  EXPECT_EQ(out[0].message.UserProperty("cairn-node"), "n1");
  EXPECT_EQ(out[0].message.UserProperty("cairn-seq"), "5");
  EXPECT_EQ(out[0].message.UserProperty("cairn-count"), "2");
  EXPECT_EQ(out[0].message.payload, "5 2\nr5\n7 2\nr7\n");
  EXPECT_EQ(out[1].message.topic, "b");
  EXPECT_EQ(out[2].message.payload, "health");  // whole messages go as they are
  EXPECT_EQ(out[2].last_seq, 8u);
}

TEST(PackWindow, StartsANewBatchAtTheRecordLimit) {
  DrainerOptions o;
  o.max_records_per_message = 2;
  auto out = PackWindow({Rec(1, "a", "x"), Rec(2, "a", "x"), Rec(3, "a", "x")}, o);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].records, 2u);
  EXPECT_EQ(out[1].message.UserProperty("cairn-seq"), "3");
}

TEST(TokenBucket, AllowsTheBurstThenTheRate) {
  TokenBucket b(40, 2);
  EXPECT_TRUE(b.TryTake(1000));
  EXPECT_TRUE(b.TryTake(1000));
  EXPECT_FALSE(b.TryTake(1000));
  EXPECT_EQ(b.WaitMs(1000), 25);
  EXPECT_EQ(b.WaitMs(1010), 15);
  EXPECT_TRUE(b.TryTake(1025));
  EXPECT_FALSE(b.TryTake(1025));
}

class DrainerTest : public OutboundQueueTest {
 protected:
  std::mutex mu_;
  std::vector<MqttMessage> sent_;
  std::atomic<bool> connected_{true};
  std::atomic<int> fail_next_{0};

  QueueDrainer::PublishFn Publisher() {
    return [this](const MqttMessage& m) -> Status {
      if (!connected_) return Error::Unavailable("not connected");
      if (fail_next_ > 0) {
        --fail_next_;
        return Error::Unavailable("link dropped before PUBACK");
      }
      std::lock_guard lock(mu_);
      sent_.push_back(m);
      return OkStatus();
    };
  }
  std::vector<uint64_t> SentSeqs() {
    std::lock_guard lock(mu_);
    std::vector<uint64_t> seqs;
    for (auto& m : sent_) {
      auto d = DecodeBatch(m.payload);
      EXPECT_TRUE(d.ok());
      for (auto& e : *d) seqs.push_back(e.seq);
    }
    return seqs;
  }
  DrainerOptions Options() {
    DrainerOptions o;
    o.node = "n1";
    o.retry_delay = std::chrono::milliseconds(10);
    o.messages_per_second = 1000;
    o.burst = 1000;
    return o;
  }
};

TEST_F(DrainerTest, SendsEveryRecordInOrderAndEmptiesTheQueue) {
  auto q = Open(4 << 20, 64 << 10);
  for (int i = 0; i < 5000; ++i) Append(*q, "r" + std::to_string(i));
  QueueDrainer d(*q, Publisher(), [this] { return connected_.load(); }, Options());
  d.Start();
  ASSERT_TRUE(testutil::WaitUntil([&] { return q->Stats().depth == 0; }));
  d.Stop();
  auto seqs = SentSeqs();
  ASSERT_EQ(seqs.size(), 5000u);
  for (size_t i = 0; i < seqs.size(); ++i) ASSERT_EQ(seqs[i], i + 1);
  EXPECT_LE(d.Stats().messages_sent, 3u);  // 2000 records per message
}

TEST_F(DrainerTest, AnIdleDrainerSleepsUntilARecordComesAndStopsAtOnce) {
  auto q = Open();
  DrainerOptions o = Options();
  o.idle_wait = std::chrono::hours(1);  // no polling: only an append or Stop wakes it
  QueueDrainer d(*q, Publisher(), [this] { return connected_.load(); }, o);
  d.Start();
  Append(*q, "first");
  ASSERT_TRUE(testutil::WaitUntil([&] { return q->Stats().depth == 0; }));
  Append(*q, "second");  // the drainer now sleeps on the empty queue: this wakes it
  ASSERT_TRUE(testutil::WaitUntil([&] { return q->Stats().depth == 0; }));
  auto stopped = std::async(std::launch::async, [&] { d.Stop(); });
  EXPECT_EQ(stopped.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  EXPECT_EQ(SentSeqs().size(), 2u);
}

TEST_F(DrainerTest, HoldsRecordsWhileDisconnectedAndDrainsOnReconnect) {
  auto q = Open();
  connected_ = false;
  QueueDrainer d(*q, Publisher(), [this] { return connected_.load(); }, Options());
  d.Start();
  for (int i = 0; i < 10; ++i) Append(*q, "r");
  EXPECT_EQ(q->Stats().depth, 10u);
  connected_ = true;
  d.Wake();
  ASSERT_TRUE(testutil::WaitUntil([&] { return q->Stats().depth == 0; }));
  EXPECT_EQ(SentSeqs().size(), 10u);
}

TEST_F(DrainerTest, KeepsTheWindowWhenAPublishFailsAndSendsItAgain) {
  auto q = Open();
  for (int i = 0; i < 10; ++i) Append(*q, "r");
  fail_next_ = 2;
  QueueDrainer d(*q, Publisher(), [this] { return connected_.load(); }, Options());
  d.Start();
  ASSERT_TRUE(testutil::WaitUntil([&] { return q->Stats().depth == 0; }));
  d.Stop();
  EXPECT_EQ(SentSeqs(), (std::vector<uint64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
  EXPECT_EQ(d.Stats().failures, 2u);
}

TEST(ClassifyRefusal, DropsWhatCanNeverBeAcceptedAndRetriesWhatMayClear) {
  EXPECT_EQ(ClassifyRefusal(0x90, 1), RefusalAction::kDrop);  // topic name invalid
  EXPECT_EQ(ClassifyRefusal(0x99, 1), RefusalAction::kDrop);  // payload format invalid
  // Not authorized: Cairn's broker says so for its rate limits too.
  EXPECT_EQ(ClassifyRefusal(0x87, 1), RefusalAction::kRetry);
  EXPECT_EQ(ClassifyRefusal(0x87, kMaxRefusals - 1), RefusalAction::kRetry);
  EXPECT_EQ(ClassifyRefusal(0x87, kMaxRefusals), RefusalAction::kDrop);
  EXPECT_EQ(ClassifyRefusal(0x97, kMaxRefusals), RefusalAction::kDrop);  // quota exceeded, for good
  EXPECT_EQ(ClassifyRefusal(0x97, 1), RefusalAction::kRetry);
  EXPECT_EQ(ClassifyRefusal(0x91, 100), RefusalAction::kRetry);  // packet identifier in use
  EXPECT_EQ(ClassifyRefusal(0, 100), RefusalAction::kRetry);     // not a refusal
}

TEST(PublishRefusal, CarriesTheReasonCodeAndIsToldApartFromOtherFailures) {
  EXPECT_EQ(PublishRefusalReason(PublishRefused("cairn/v1/x", 0x87)), 0x87);
  EXPECT_EQ(PublishRefusalReason(PublishRefused("odd (reason 0x12) topic", 0x99)), 0x99);
  EXPECT_EQ(PublishRefusalReason(Error::Unavailable("not connected")), 0);
  EXPECT_EQ(PublishRefusalReason(Error::DeadlineExceeded("no acknowledgement")), 0);
}

TEST_F(DrainerTest, DropsAMessageTheBrokerRefusesForGoodAndSendsTheRest) {
  auto q = Open();
  Append(*q, "r1");
  ASSERT_TRUE(q->Append(QueuedRecord::Kind::kMessage, "forbidden", "text/plain", "m").ok());
  Append(*q, "r3");
  std::atomic<int> refusals{0};
  auto inner = Publisher();
  QueueDrainer d(
      *q,
      [&](const MqttMessage& m) -> Status {
        if (m.topic == "forbidden") {
          ++refusals;
          return PublishRefused(m.topic, 0x87);
        }
        return inner(m);
      },
      [this] { return connected_.load(); }, Options());
  d.Start();
  ASSERT_TRUE(testutil::WaitUntil([&] { return q->Stats().depth == 0; }, std::chrono::seconds(10)));
  d.Stop();
  EXPECT_EQ(refusals.load(), kMaxRefusals);
  EXPECT_EQ(d.Stats().refused_messages, 1u);
  EXPECT_EQ(d.Stats().refused_records, 1u);
  EXPECT_NE(d.Stats().last_refusal.find("reason 0x87"), std::string::npos) << d.Stats().last_refusal;
  // The records around it arrived; r1 possibly twice (its window was retried).
  auto seqs = SentSeqs();
  EXPECT_NE(std::find(seqs.begin(), seqs.end(), 1u), seqs.end());
  EXPECT_NE(std::find(seqs.begin(), seqs.end(), 3u), seqs.end());
}

// The agent's mqtt output path: records go through the queue and the drainer.
TEST(AgentOutboundQueue, SendsSequencedBatchesAndHoldsRecordsWhileTheLinkIsDownWithoutGaps) {
  std::string tmpl = (fs::temp_directory_path() / "cairn-agent-queue-test-XXXXXX").string();
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  const std::string dir = tmpl;
  auto broker = std::make_shared<testing::FakeBroker>();
  testing::FakeMqttClient node(broker, "node-n1", "node:ws:n1");
  testing::FakeMqttClient scheduler(broker, "scheduler", "svc:scheduler");
  Identity id;
  id.data_dir = dir;
  id.workspace = "ws";
  id.node = "n1";
  id.broker_url = "ssl://x:1";
  AgentOptions opts;
  opts.health_interval = std::chrono::hours(1);
  auto agent = std::make_unique<Agent>(id, opts, node, SystemClock::Instance());
  node.SetMessageHandler([&](const MqttMessage& m) { agent->OnMessage(m); });
  ASSERT_TRUE(node.Connect().ok());
  ASSERT_TRUE(scheduler.Connect().ok());
  ASSERT_TRUE(agent->Start().ok());

  v1::PipelineConfig c;
  c.set_name("beats");
  c.set_workspace("ws");
  c.set_version(1);
  c.set_digest("d1");
  c.mutable_spec()->mutable_input()->mutable_generate()->set_interval_ms(10);
  c.mutable_spec()->mutable_input()->mutable_generate()->set_message("beat");
  c.mutable_spec()->mutable_output()->mutable_mqtt()->set_stream("beats");
  c.mutable_spec()->mutable_output()->mutable_mqtt()->set_qos(1);
  v1::DesiredState d;
  d.set_generation(1);
  auto* ref = d.add_pipelines();
  ref->set_name("beats");
  ref->set_version(1);
  ref->set_digest("d1");
  auto publish_retained = [&](const std::string& topic, const std::string& payload) {
    MqttMessage m;
    m.topic = topic;
    m.payload = payload;
    m.retained = true;
    ASSERT_TRUE(scheduler.Publish(m).ok());
  };
  publish_retained(topics::PipelineConfig("ws", "beats", 1), c.SerializeAsString());
  publish_retained(topics::NodeDesired("ws", "n1"), d.SerializeAsString());

  const std::string data_topic = topics::Data("ws", "beats");
  auto data = [&] {
    std::vector<MqttMessage> out;
    for (auto& m : broker->Published()) {
      if (m.topic == data_topic) out.push_back(m);
    }
    return out;
  };
  ASSERT_TRUE(testutil::WaitUntil([&] { return !data().empty(); }));

  node.SetConnected(false);
  ASSERT_TRUE(testutil::WaitUntil([&] { return agent->Health().buffered_messages() >= 30; }));
  const size_t sent_while_down = data().size();
  node.SetConnected(true);
  ASSERT_TRUE(testutil::WaitUntil([&] { return data().size() > sent_while_down; }));
  ASSERT_TRUE(testutil::WaitUntil([&] { return agent->Health().buffered_messages() < 30; }));
  agent->Stop();
  agent.reset();

  uint64_t expect = 1;
  for (const auto& m : data()) {
    EXPECT_EQ(m.content_type, kRecordBatchContentType);
    EXPECT_EQ(m.qos, 1);
    EXPECT_EQ(m.UserProperty("cairn-node"), "n1");
    EXPECT_EQ(m.UserProperty("cairn-seq"), std::to_string(expect));
    auto batch = DecodeBatch(m.payload);
    ASSERT_TRUE(batch.ok()) << batch.error().message;
    EXPECT_EQ(m.UserProperty("cairn-count"), std::to_string(batch->size()));
    for (const auto& e : *batch) {
      ASSERT_EQ(e.seq, expect) << "a gap or a duplicate";
      EXPECT_EQ(e.record, "beat");
      ++expect;
    }
  }
  EXPECT_GT(expect, 30u);
  std::error_code ec;
  fs::remove_all(dir, ec);
}

// A full queue drops the oldest records, counts them and says so in health.
TEST(AgentOutboundQueue, ReportsTheRecordsAFullQueueDroppedInHealth) {
  std::string tmpl = (fs::temp_directory_path() / "cairn-agent-queue-test-XXXXXX").string();
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  const std::string dir = tmpl;
  auto broker = std::make_shared<testing::FakeBroker>();
  testing::FakeMqttClient node(broker, "node-n1", "node:ws:n1");
  testing::FakeMqttClient scheduler(broker, "scheduler", "svc:scheduler");
  Identity id;
  id.data_dir = dir;
  id.workspace = "ws";
  id.node = "n1";
  id.broker_url = "ssl://x:1";
  AgentOptions opts;
  opts.health_interval = std::chrono::hours(1);
  opts.queue_max_bytes = 2048;  // a few dozen records
  auto agent = std::make_unique<Agent>(id, opts, node, SystemClock::Instance());
  node.SetMessageHandler([&](const MqttMessage& m) { agent->OnMessage(m); });
  ASSERT_TRUE(node.Connect().ok());
  ASSERT_TRUE(scheduler.Connect().ok());
  ASSERT_TRUE(agent->Start().ok());
  node.SetConnected(false);

  v1::PipelineConfig c;
  c.set_name("beats");
  c.set_workspace("ws");
  c.set_version(1);
  c.set_digest("d1");
  c.mutable_spec()->mutable_input()->mutable_generate()->set_interval_ms(10);
  c.mutable_spec()->mutable_input()->mutable_generate()->set_message("beat");
  c.mutable_spec()->mutable_output()->mutable_mqtt()->set_stream("beats");
  v1::DesiredState d;
  d.set_generation(1);
  auto* ref = d.add_pipelines();
  ref->set_name("beats");
  ref->set_version(1);
  ref->set_digest("d1");
  for (const auto& [topic, payload] : {std::pair{topics::PipelineConfig("ws", "beats", 1), c.SerializeAsString()},
                                       std::pair{topics::NodeDesired("ws", "n1"), d.SerializeAsString()}}) {
    MqttMessage m;
    m.topic = topic;
    m.payload = payload;
    m.retained = true;
    m.user_properties = {{kPrincipalProperty, "svc:scheduler"}};
    agent->OnMessage(m);  // the link is down: handed over as if it came before
  }
  ASSERT_TRUE(testutil::WaitUntil([&] { return agent->Health().dropped_messages() >= 10; }));
  v1::NodeHealth h = agent->Health();
  EXPECT_GT(h.buffered_messages(), 0u);
  bool said_so = false;
  for (const auto& e : h.recent_errors()) said_so = said_so || e.find("outbound queue full") != std::string::npos;
  EXPECT_TRUE(said_so) << h.DebugString();
  agent->Stop();
  agent.reset();
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace
}  // namespace cairn::edge
