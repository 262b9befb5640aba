#include "cairn/edge/agent.h"

#include <spdlog/spdlog.h>

#include "cairn/common/files.h"
#include "cairn/common/rpc.h"
#include "cairn/common/topics.h"
#include "cairn/edge/runtime/component.h"

namespace cairn::edge {
namespace {
constexpr size_t kMaxRecentErrors = 10;
constexpr size_t kMaxConfigBytes = 256 * 1024;
constexpr size_t kMaxCachedConfigs = 256;
}  // namespace

Agent::Agent(Identity identity, AgentOptions options, MqttClient& mqtt, Clock& clock)
    : id_(std::move(identity)),
      options_(std::move(options)),
      mqtt_(mqtt),
      clock_(clock),
      streams_(mqtt, id_.workspace),
      started_ms_(clock.NowMs()),
      current_labels_(id_.labels) {
  retire_thread_ = std::thread([this] { RetireLoop(); });
  // Stream records (at most 40 messages/s of batches) and the node's own
  // messages (5/s): together under the broker's 50/s per connection.
  OpenQueue("queue", options_.queue_max_bytes, 40, &queue_, &drainer_);
  OpenQueue("queue-node", options_.node_queue_max_bytes, 5, &node_queue_, &node_drainer_);
}

void Agent::OpenQueue(const std::string& name, uint64_t max_bytes, double messages_per_second,
                      std::unique_ptr<OutboundQueue>* queue_out, std::unique_ptr<QueueDrainer>* drainer_out) {
  SegmentedLogOptions qo;
  qo.dir = id_.data_dir + "/" + name;
  qo.max_bytes = max_bytes;
  qo.segment_bytes = std::min<uint64_t>(qo.segment_bytes, std::max<uint64_t>(max_bytes / 4, 4096));
  auto queue = OpenSegmentedLogQueue(qo);
  if (!queue.ok()) {
    spdlog::error("outbound queue {} unusable, its messages go straight to MQTT: {}", qo.dir,
                  queue.error().message);
    return;
  }
  QueueStats qs = (*queue)->Stats();
  if (qs.depth > 0 || qs.corrupt > 0) {
    spdlog::info("outbound queue {}: {} records waiting, {} lost to corruption", qo.dir, qs.depth, qs.corrupt);
  }
  DrainerOptions dopt;
  dopt.node = id_.node;
  dopt.messages_per_second = messages_per_second;
  dopt.burst = messages_per_second;
  // The drainer publishes only from its own thread and waits for each
  // message's PUBACK, so a window is acked in the queue only once the broker
  // has every message of it.
  *drainer_out = std::make_unique<QueueDrainer>(
      **queue, [this](const MqttMessage& m) { return mqtt_.PublishAndWait(m, std::chrono::seconds(10)); },
      [this] { return mqtt_.IsConnected(); }, dopt);
  *queue_out = std::move(*queue);
  (*drainer_out)->Start();
}

Agent::~Agent() {
  {
    std::lock_guard lock(loop_mu_);
    loop_stop_ = true;
  }
  loop_cv_.notify_all();
  if (health_thread_.joinable()) health_thread_.join();
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    for (auto& [name, r] : runners_) to_retire_.push_back(std::move(r));
    runners_.clear();
    retire_stop_ = true;
  }
  retire_cv_.notify_all();
  desired_cv_.notify_all();
  if (retire_thread_.joinable()) retire_thread_.join();  // stops every runner, outside mu_
}

void Agent::RetireLoop() {
  std::unique_lock lock(mu_);
  for (;;) {
    retire_cv_.wait(lock, [this] { return retire_stop_ || !to_retire_.empty(); });
    if (to_retire_.empty()) break;  // retire_stop_ and nothing left
    std::unique_ptr<PipelineRunner> runner = std::move(to_retire_.front());
    to_retire_.pop_front();
    const std::string name = runner->config().name();
    lock.unlock();
    runner->Stop();  // joins the pipeline's thread: never under mu_
    runner.reset();
    lock.lock();
    auto it = retiring_names_.find(name);
    if (it != retiring_names_.end()) retiring_names_.erase(it);
    // A new version may have waited for this one to stop.
    if (!retiring_names_.count(name)) Reconcile();
  }
}

size_t Agent::retiring() const {
  std::lock_guard lock(mu_);
  return retiring_names_.size();
}

v1::NodeStatus Agent::MakeStatus(bool online, uint64_t bd_seq, const std::string& version,
                                 const std::string& reason, int64_t now_ms) {
  v1::NodeStatus s;
  s.set_state(online ? v1::NodeStatus::ONLINE : v1::NodeStatus::OFFLINE);
  s.set_bd_seq(bd_seq);
  s.set_timestamp_ms(now_ms);
  s.set_agent_version(version);
  s.set_reason(reason);
  return s;
}

bool Agent::Restore() {
  std::string path = id_.data_dir + "/state/cache.pb";
  if (!FileExists(path)) return false;
  auto raw = ReadFile(path);
  v1::NodeCache cache;
  {
    std::lock_guard lock(mu_);
    if (desired_from_broker_) return false;  // the broker's state is newer
  }
  if (!raw.ok() || !cache.ParseFromString(*raw)) {
    spdlog::warn("{} is damaged; ignoring it (the broker's retained state will be used)", path);
    std::lock_guard lock(mu_);
    RecordError("damaged state cache ignored");
    return false;
  }
  std::lock_guard lock(mu_);
  if (desired_from_broker_) return false;  // it came while the cache was read
  desired_ = cache.desired();
  id_.labels = Labels(cache.desired().labels().begin(), cache.desired().labels().end());
  {
    std::lock_guard labels_lock(labels_mu_);
    current_labels_ = id_.labels;
  }
  for (auto& c : *cache.mutable_configs()) configs_[{c.name(), c.version()}] = std::move(c);
  saved_cache_ = *raw;
  spdlog::info("restored desired generation {} ({} pipelines) from {}", desired_->generation(),
               desired_->pipelines_size(), path);
  Reconcile();
  return true;
}

bool Agent::WaitForDesired(std::chrono::milliseconds max_wait) {
  std::unique_lock lock(mu_);
  desired_cv_.wait_for(lock, max_wait, [this] { return desired_from_broker_ || stopping_; });
  return desired_from_broker_;
}

Status Agent::Enqueue(const MqttMessage& message) {
  if (!node_queue_) return mqtt_.Publish(message);
  auto seq = node_queue_->Append(QueuedRecord::Kind::kMessage, message.topic, message.content_type, message.payload);
  if (!seq.ok()) return seq.error();
  return OkStatus();
}

void Agent::SaveCache() {
  if (!desired_) return;
  v1::NodeCache cache;
  *cache.mutable_desired() = *desired_;
  for (const auto& ref : desired_->pipelines()) {
    auto it = configs_.find({ref.name(), ref.version()});
    if (it != configs_.end()) *cache.add_configs() = it->second;
  }
  std::string raw;
  cache.SerializeToString(&raw);
  if (raw == saved_cache_) return;
  std::string dir = id_.data_dir + "/state";
  Status st = MakeDirs(dir, 0700);
  if (st.ok()) st = WriteFileAtomic(dir + "/cache.pb", raw, 0600);
  if (!st.ok()) {
    spdlog::warn("state cache not saved: {}", st.error().message);
    RecordError("state cache not saved: " + st.error().message);
    return;
  }
  saved_cache_ = std::move(raw);
}

Status Agent::Start() {
  connected_since_ms_ = clock_.NowMs();
  {
    // Prime the CPU counters so that the first report has a real figure.
    std::lock_guard stats_lock(stats_mu_);
    (void)stats_.Sample(id_.data_dir);
  }
  if (auto st = mqtt_.Subscribe(topics::NodeDesired(id_.workspace, id_.node), 1); !st.ok()) return st;
  if (auto st = mqtt_.Subscribe(topics::PipelineConfigs(id_.workspace), 1); !st.ok()) return st;
  PublishStatus(true, "");
  PublishHealth();
  health_thread_ = std::thread([this] { HealthLoop(); });
  spdlog::info("node {}/{} running (health every {} ms)", id_.workspace, id_.node,
               options_.health_interval.count());
  return OkStatus();
}

void Agent::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  desired_cv_.notify_all();
  {
    std::lock_guard lock(loop_mu_);
    loop_stop_ = true;
  }
  loop_cv_.notify_all();
  if (health_thread_.joinable()) health_thread_.join();
  // What is left stays queued for the next start.
  if (drainer_) drainer_->Stop();
  if (node_drainer_) node_drainer_->Stop();
  PublishStatus(false, "clean shutdown");
  mqtt_.Disconnect();
  {
    std::lock_guard lock(mu_);
    for (auto& [name, r] : runners_) to_retire_.push_back(std::move(r));
    runners_.clear();
    retire_stop_ = true;
  }
  retire_cv_.notify_all();
  if (retire_thread_.joinable()) retire_thread_.join();  // each Stop is bounded
}

void Agent::OnConnection(bool connected) {
  if (!connected) return;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    ++reconnects_;
    connected_since_ms_ = clock_.NowMs();
  }
  // The broker published our will when the link dropped: announce the birth
  // again (same bd_seq: it is the same agent session).
  PublishStatus(true, "");
  PublishHealth(/*force=*/true);  // a fresh report, behind what waited
  if (drainer_) drainer_->Wake();
  if (node_drainer_) node_drainer_->Wake();  // send what was queued while the link was down
}

void Agent::PublishStatus(bool online, const std::string& reason) {
  MqttMessage m;
  m.topic = topics::NodeStatus(id_.workspace, id_.node);
  m.payload = MakeStatus(online, options_.bd_seq, options_.agent_version, reason, clock_.NowMs())
                  .SerializeAsString();
  m.qos = 1;
  m.retained = true;
  m.content_type = "cairn.v1.NodeStatus";
  if (auto st = mqtt_.Publish(m); !st.ok()) spdlog::warn("status not published: {}", st.error().message);
}

void Agent::HealthLoop() {
  // A report due while the previous one still waits in the queue is not
  // dropped: it is made once that one has left (checked every 200 ms), so
  // an immediate report (HealthSoon) still goes out at once after it.
  constexpr auto kRecheck = std::chrono::milliseconds(200);
  bool due = false;
  std::unique_lock lock(loop_mu_);
  while (!loop_stop_) {
    loop_cv_.wait_for(lock, due ? std::min<std::chrono::milliseconds>(kRecheck, options_.health_interval)
                                : options_.health_interval,
                      [this] { return loop_stop_ || health_now_; });
    if (loop_stop_) break;
    health_now_ = false;
    lock.unlock();
    due = !PublishHealth();
    lock.lock();
  }
}

void Agent::HealthSoon() {
  {
    std::lock_guard lock(loop_mu_);
    health_now_ = true;
  }
  loop_cv_.notify_all();
}

v1::NodeHealth Agent::Health() {
  v1::NodeHealth h;
  h.set_timestamp_ms(clock_.NowMs());
  h.set_agent_version(options_.agent_version);
  h.set_interval_seconds(static_cast<uint32_t>(
      std::max<int64_t>(1, std::chrono::duration_cast<std::chrono::seconds>(options_.health_interval).count())));
  h.set_uptime_seconds(static_cast<double>(clock_.NowMs() - started_ms_) / 1000.0);
  Result<SystemSample> sample = SystemSample{};
  {
    std::lock_guard stats_lock(stats_mu_);
    sample = stats_.Sample(id_.data_dir);
  }
  std::lock_guard lock(mu_);
  if (sample.ok()) {
    h.set_cpu_percent(sample->cpu_percent);
    h.set_memory_total_bytes(sample->memory_total_bytes);
    h.set_memory_used_bytes(sample->memory_used_bytes);
    h.set_disk_total_bytes(sample->disk_total_bytes);
    h.set_disk_used_bytes(sample->disk_used_bytes);
  } else {
    RecordError("system stats: " + sample.error().message);
  }
  h.set_seq(++health_seq_);
  h.set_reconnects(reconnects_);
  {
    // Both queues together: the streams' and the node's own.
    QueueStats qs;
    DrainerStats ds;
    for (const auto* pair : {&drainer_, &node_drainer_}) {
      if (*pair) {
        DrainerStats d = (*pair)->Stats();
        ds.refused_records += d.refused_records;
        if (!d.last_refusal.empty()) ds.last_refusal = d.last_refusal;
      }
    }
    for (const auto* q : {&queue_, &node_queue_}) {
      if (*q) {
        QueueStats one = (*q)->Stats();
        qs.depth += one.depth;
        qs.dropped += one.dropped;
      }
    }
    h.set_buffered_messages(qs.depth);
    h.set_dropped_messages(qs.dropped);
    h.set_refused_messages(ds.refused_records);
    NoteQueueEvents(qs, ds);
  }
  h.set_connected_since_ms(connected_since_ms_);
  h.set_applied_generation(applied_generation_);
  for (const auto& [name, r] : runners_) *h.add_pipelines() = r->Health();
  for (const auto& [name, ph] : invalid_) *h.add_pipelines() = ph;
  if (desired_) {
    for (const auto& ref : desired_->pipelines()) {
      if (runners_.count(ref.name()) || invalid_.count(ref.name())) continue;
      auto* ph = h.add_pipelines();
      ph->set_name(ref.name());
      ph->set_version(ref.version());
      ph->set_state(v1::PipelineHealth::PENDING);
      ph->set_last_error(retiring_names_.count(ref.name()) ? "waiting for the previous version to stop"
                                                           : "waiting for the pipeline config");
    }
  }
  for (const auto& e : recent_errors_) h.add_recent_errors(e);
  return h;
}

uint64_t Agent::applied_generation() const {
  std::lock_guard lock(mu_);
  return applied_generation_;
}

bool Agent::PublishHealth(bool force) {
  const std::string topic = topics::NodeHealth(id_.workspace, id_.node);
  const std::string content_type = "cairn.v1.NodeHealth";
  if (!node_queue_) {
    MqttMessage m;
    m.topic = topic;
    m.payload = Health().SerializeAsString();
    m.qos = 1;
    m.content_type = content_type;
    if (auto st = mqtt_.Publish(m); !st.ok()) spdlog::debug("health not published: {}", st.error().message);
    return true;
  }
  if (!force) {
    std::lock_guard lock(mu_);
    if (HealthWaiting(queued_health_seq_, node_queue_->Stats())) return false;  // bounded: one waits at a time
  }
  // Appended outside mu_ (one write(2)); sent in order with the records.
  auto seq = node_queue_->Append(QueuedRecord::Kind::kMessage, topic, content_type, Health().SerializeAsString());
  if (!seq.ok()) {
    spdlog::debug("health not queued: {}", seq.error().message);
    return true;  // an I/O error: the next interval tries again
  }
  std::lock_guard lock(mu_);
  queued_health_seq_ = std::max(queued_health_seq_, *seq);
  return true;
}

bool HealthWaiting(uint64_t queued_seq, const QueueStats& qs) {
  // Records leave the queue only from its head (ack or drop), so the records
  // still in it are exactly the seqs [next_seq - depth, next_seq).
  return queued_seq != 0 && queued_seq + qs.depth >= qs.next_seq;
}

void Agent::NoteQueueEvents(const QueueStats& qs, const DrainerStats& ds) {
  if (qs.dropped > reported_dropped_) {
    RecordError("outbound queue full: dropped the " + std::to_string(qs.dropped - reported_dropped_) +
                " oldest record(s), " + std::to_string(qs.dropped) + " since start (cairn-edge run --queue-max-bytes)");
    reported_dropped_ = qs.dropped;
  }
  if (ds.refused_records > reported_refused_) {
    RecordError("broker refused queued message(s) for good, " +
                std::to_string(ds.refused_records - reported_refused_) + " record(s) dropped: " + ds.last_refusal);
    reported_refused_ = ds.refused_records;
  }
}

void Agent::RecordError(const std::string& error) {
  recent_errors_.push_back(error);
  while (recent_errors_.size() > kMaxRecentErrors) recent_errors_.pop_front();
}

void Agent::OnMessage(const MqttMessage& m) {
  if (streams_.OnMessage(m)) return;  // a data stream an mqtt input reads (any publisher)
  // Only a service writes desired state and configs (the broker enforces it;
  // this is a second line of defence).
  std::string principal = m.UserProperty(kPrincipalProperty);
  if (principal.rfind("svc:", 0) != 0) {
    spdlog::warn("message on {} from {} ignored", m.topic, principal);
    std::lock_guard lock(mu_);
    RecordError("message on " + m.topic + " from " + principal + " ignored");
    return;
  }
  if (m.topic == topics::NodeDesired(id_.workspace, id_.node)) {
    v1::DesiredState d;
    if (!m.payload.empty() && !d.ParseFromString(m.payload)) {
      spdlog::warn("malformed desired state on {} ignored", m.topic);
      std::lock_guard lock(mu_);
      RecordError("malformed desired state ignored");
      return;
    }
    {
      std::lock_guard lock(mu_);
      if (desired_ && !m.payload.empty() && d.generation() < desired_->generation()) return;  // older
      desired_ = d;
      if (!desired_from_broker_) {
        desired_from_broker_ = true;
        desired_cv_.notify_all();
      }
      id_.labels = Labels(d.labels().begin(), d.labels().end());
      {
        std::lock_guard labels_lock(labels_mu_);
        current_labels_ = id_.labels;
      }
      Reconcile();
    }
    RequestMissingConfigs();
    return;
  }
  auto pt = topics::ParsePipelineTopic(m.topic);
  if (!pt || pt->ws != id_.workspace) return;
  std::string requested_topic;
  {
    std::lock_guard lock(mu_);
    auto key = std::make_pair(pt->pipeline, pt->version);
    if (m.payload.empty()) {
      configs_.erase(key);
      return;
    }
    v1::PipelineConfig cfg;
    if (m.payload.size() > kMaxConfigBytes || !cfg.ParseFromString(m.payload) || cfg.name() != pt->pipeline ||
        cfg.version() != pt->version) {
      spdlog::warn("malformed pipeline config on {} ignored", m.topic);
      RecordError("malformed pipeline config on " + m.topic);
      return;
    }
    // The cache stays bounded: when full, forget a config the desired state
    // does not name (it can be fetched again, see RequestMissingConfigs).
    if (configs_.size() >= kMaxCachedConfigs) {
      for (auto it = configs_.begin(); it != configs_.end(); ++it) {
        if (!Wanted(it->first.first, it->first.second)) {
          configs_.erase(it);
          break;
        }
      }
    }
    configs_[key] = std::move(cfg);
    if (requested_.erase(m.topic)) requested_topic = m.topic;
    Reconcile();
  }
  if (!requested_topic.empty()) (void)mqtt_.Unsubscribe(requested_topic);
}

bool Agent::Wanted(const std::string& name, uint32_t version) const {
  if (!desired_) return false;
  for (const auto& ref : desired_->pipelines()) {
    if (ref.name() == name && ref.version() == version) return true;
  }
  return false;
}

void Agent::RequestMissingConfigs() {
  // A config that was dropped from the cache (or never seen) is still retained
  // on the broker: subscribing to its exact topic delivers it again.
  std::vector<std::string> topics_to_request;
  {
    std::lock_guard lock(mu_);
    if (!desired_) return;
    for (const auto& ref : desired_->pipelines()) {
      if (configs_.count({ref.name(), ref.version()})) continue;
      std::string t = topics::PipelineConfig(id_.workspace, ref.name(), ref.version());
      if (requested_.insert(t).second) topics_to_request.push_back(t);
    }
  }
  for (const auto& t : topics_to_request) {
    if (auto st = mqtt_.Subscribe(t, 1); !st.ok()) spdlog::warn("cannot request {}: {}", t, st.error().message);
  }
}

void Agent::Reconcile() {
  if (stopping_ || !desired_) return;
  bool complete = true;
  std::map<std::string, const v1::PipelineRef*> wanted;
  for (const auto& ref : desired_->pipelines()) wanted[ref.name()] = &ref;

  // A runner leaving runners_ goes to the retirer, which stops and joins it
  // outside mu_; its name starts again only once it has stopped.
  auto retire = [this](std::map<std::string, std::unique_ptr<PipelineRunner>>::iterator it) {
    retiring_names_.insert(it->first);
    to_retire_.push_back(std::move(it->second));
    return runners_.erase(it);
  };
  // Remove what is no longer desired.
  for (auto it = runners_.begin(); it != runners_.end();) {
    if (!wanted.count(it->first)) {
      spdlog::info("stopping pipeline {} (removed)", it->first);
      it = retire(it);
    } else {
      ++it;
    }
  }
  for (auto it = invalid_.begin(); it != invalid_.end();) {
    it = wanted.count(it->first) ? std::next(it) : invalid_.erase(it);
  }

  for (const auto& [name, ref] : wanted) {
    auto running = runners_.find(name);
    if (running != runners_.end() && running->second->config().version() == ref->version() &&
        running->second->config().digest() == ref->digest()) {
      continue;
    }
    auto inv = invalid_.find(name);
    if (inv != invalid_.end() && inv->second.version() == ref->version()) continue;
    auto cfg = configs_.find({name, ref->version()});
    if (cfg == configs_.end()) {
      complete = false;  // config not here yet; an older version keeps running meanwhile
      continue;
    }
    if (running != runners_.end()) {
      spdlog::info("updating pipeline {} to version {}", name, ref->version());
      retire(running);
      running = runners_.end();
    }
    if (retiring_names_.count(name)) {
      complete = false;  // started when its old runner has stopped (RetireLoop)
      continue;
    }
    PipelineContext ctx;
    ctx.workspace = id_.workspace;
    ctx.node = id_.node;
    ctx.labels = id_.labels;
    ctx.data_dir = id_.data_dir;
    ctx.allow_exec = options_.allow_exec;
    ctx.files = options_.files;
    ctx.subscribe = streams_.Fn();
    ctx.current_labels = [this] {
      std::lock_guard labels_lock(labels_mu_);
      return current_labels_;
    };
    // File inputs keep their positions here across restarts (never
    // reachable by a pipeline's own file paths: state/ is the node's).
    ctx.checkpoints = std::make_shared<runtime::FileCheckpoints>(id_.data_dir + "/state/checkpoints/" + name);
    ctx.publish = [this](const std::string& stream, const std::string& payload, int qos) -> Status {
      if (queue_) {
        if (HoldBackStreamRecord(queue_->Stats().bytes, options_.queue_max_bytes, mqtt_.IsConnected())) {
          return Error::ResourceExhausted("outbound queue at 3/4 of its bound with the link up: waiting for it to drain");
        }
        // Sent at QoS 1 by the drainer, batched (record_batch.h).
        auto seq = queue_->Append(QueuedRecord::Kind::kStreamRecord, topics::Data(id_.workspace, stream), "",
                                  payload);
        if (!seq.ok()) return seq.error();
        return OkStatus();
      }
      MqttMessage m;
      m.topic = topics::Data(id_.workspace, stream);
      m.payload = payload;
      m.qos = qos;
      m.content_type = "text/plain";
      return mqtt_.Publish(m);
    };
    auto runner = options_.registry ? MakePipelineRunner(cfg->second, std::move(ctx), *options_.registry)
                                    : MakePipelineRunner(cfg->second, std::move(ctx));
    if (!runner.ok()) {
      spdlog::warn("pipeline {} v{} rejected: {}", name, ref->version(), runner.error().message);
      RecordError("pipeline " + name + ": " + runner.error().message);
      v1::PipelineHealth ph;
      ph.set_name(name);
      ph.set_version(ref->version());
      ph.set_state(v1::PipelineHealth::FAILED);
      ph.set_last_error(runner.error().message);
      invalid_[name] = ph;
      continue;
    }
    invalid_.erase(name);
    spdlog::info("starting pipeline {} version {}", name, ref->version());
    (*runner)->Start();
    runners_[name] = std::move(*runner);
  }
  if (!to_retire_.empty()) retire_cv_.notify_all();
  // Applied means exactly the desired set runs: not while an old runner is
  // still stopping (RetireLoop reconciles again after each).
  if (!retiring_names_.empty()) complete = false;
  SaveCache();
  if (complete && applied_generation_ != desired_->generation()) {
    applied_generation_ = desired_->generation();
    HealthSoon();
    spdlog::info("applied desired generation {} ({} pipelines)", applied_generation_, wanted.size());
  }
}

}  // namespace cairn::edge
