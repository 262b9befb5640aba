// The node agent: connects with its certificate, keeps its retained status
// (online now; offline by last will or clean shutdown, with bd_seq), reports
// NodeHealth every interval, and reconciles its pipelines to exactly the
// retained desired state the scheduler publishes for it.
// Health reports and the node's shipped logs go through the on-disk outbound
// queue like stream records (docs/design/edge-queue.md); only the retained
// birth/death status is published directly.
// Thread-safety: OnMessage/OnConnection run on the MQTT dispatcher thread;
// the health loop runs on its own thread; shared state is under mu_. Slow
// work never happens under mu_: Reconcile plans under it, and the pipelines
// it retires are stopped and joined by the retirer thread, outside it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "cairn/edge/file_roots.h"
#include "cairn/common/clock.h"
#include "cairn/common/mqtt_client.h"
#include "cairn/edge/identity.h"
#include "cairn/edge/outbound_queue.h"
#include "cairn/edge/pipeline_runtime.h"
#include "cairn/edge/runtime/stream_subscriptions.h"
#include "cairn/edge/queue_drainer.h"
#include "cairn/edge/system_stats.h"
#include "cairn/v1/edge_cache.pb.h"
#include "cairn/v1/node.pb.h"
#include "cairn/v1/pipeline.pb.h"

namespace cairn::edge {

struct AgentOptions {
  std::chrono::milliseconds health_interval{10000};
  std::string agent_version;
  uint64_t bd_seq = 0;  // this session's birth/death sequence
  // Bound of the outbound queue (DATA_DIR/queue); the oldest records are
  // dropped beyond it.
  uint64_t queue_max_bytes = 64ull << 20;
  // Bound of the node's own queue (DATA_DIR/queue-node: health reports and
  // shipped logs), kept apart so that the streams' cairn-seq has no holes
  // and a data backlog neither delays nor evicts health.
  uint64_t node_queue_max_bytes = 4ull << 20;
  // Whether `exec` inputs may run commands (the node owner's --allow-exec).
  bool allow_exec = false;
  // What pipelines may read and write (--allow-read/--allow-write).
  std::shared_ptr<const FileRoots> files;
  // The component kinds pipelines are built from (null: the built-in ones).
  const runtime::ComponentRegistry* registry = nullptr;
};

// Whether the record appended to the queue as `queued_seq` (0: none) is
// still in it, given the queue's stats now. Pure.
bool HealthWaiting(uint64_t queued_seq, const QueueStats& qs);

class Agent {
 public:
  Agent(Identity identity, AgentOptions options, MqttClient& mqtt, Clock& clock);
  ~Agent();

  // Starts the pipelines of the desired state cached in the data dir (if
  // any), so that a node restarted without a link runs what it ran before.
  // Call before the first connection attempt. Returns true if a cache was
  // restored; a damaged cache is reported and ignored.
  // Does nothing (false) once a desired state came from the broker: the
  // broker's retained state is newer than any cache.
  bool Restore();
  // Waits up to `max_wait` until a desired state came from the broker (the
  // retained one arrives right after Start subscribes); true if it did.
  bool WaitForDesired(std::chrono::milliseconds max_wait);
  // Sends a whole message (the node's logs) through the outbound queue, so
  // that it survives an outage; straight to MQTT if the queue is unusable.
  Status Enqueue(const MqttMessage& message);
  // Subscribes, publishes the birth and starts the health loop. The client
  // must be connected.
  Status Start();
  // Clean shutdown: retained offline status, pipelines stopped, disconnect.
  void Stop();

  void OnMessage(const MqttMessage& message);
  void OnConnection(bool connected);

  // Pipelines whose runners are being stopped (retired) right now.
  size_t retiring() const;

  // Builds (does not publish) the current health report.
  v1::NodeHealth Health();
  uint64_t applied_generation() const;

  // The status message this session publishes as birth (online) or death.
  static v1::NodeStatus MakeStatus(bool online, uint64_t bd_seq, const std::string& version,
                                   const std::string& reason, int64_t now_ms);

 private:
  void PublishStatus(bool online, const std::string& reason);
  // Queues a health report. At most one regular report waits in the queue:
  // while one waits, nothing is queued and false is returned (the health
  // loop tries again shortly); `force` (a reconnect) queues a fresh one
  // anyway.
  bool PublishHealth(bool force = false);
  // Adds the queue's news (drops, refusals) to recent_errors_. Under mu_.
  void NoteQueueEvents(const QueueStats& qs, const DrainerStats& ds);
  void HealthLoop();
  void Reconcile();  // under mu_: plans, starts new runners, hands old ones to the retirer
  void RetireLoop();
  void OpenQueue(const std::string& name, uint64_t max_bytes, double messages_per_second,
                 std::unique_ptr<OutboundQueue>* queue, std::unique_ptr<QueueDrainer>* drainer);  // the retirer thread: stops runners outside mu_
  void SaveCache();  // under mu_: desired state + the configs it names
  bool Wanted(const std::string& name, uint32_t version) const;  // under mu_
  void RequestMissingConfigs();  // not under mu_
  void RecordError(const std::string& error);  // under mu_
  void HealthSoon();  // wakes the health loop for an immediate report

  Identity id_;
  AgentOptions options_;
  MqttClient& mqtt_;
  Clock& clock_;
  // The data streams `mqtt` inputs read (PipelineContext::subscribe).
  runtime::StreamSubscriptions streams_;
  std::mutex stats_mu_;
  SystemStats stats_;
  int64_t started_ms_;

  mutable std::mutex mu_;
  std::optional<v1::DesiredState> desired_;
  std::map<std::pair<std::string, uint32_t>, v1::PipelineConfig> configs_;
  std::map<std::string, std::unique_ptr<PipelineRunner>> runners_;
  std::map<std::string, v1::PipelineHealth> invalid_;
  std::set<std::string> requested_;  // config topics subscribed to one by one  // pipelines that failed validation
  uint64_t applied_generation_ = 0;
  std::string saved_cache_;  // last cache written, to skip identical writes
  std::deque<std::string> recent_errors_;
  uint64_t health_seq_ = 0;
  uint32_t reconnects_ = 0;
  int64_t connected_since_ms_ = 0;
  bool stopping_ = false;
  bool desired_from_broker_ = false;
  std::condition_variable desired_cv_;  // with mu_: desired_from_broker_ set
  // Runners taken out of runners_ (removed or replaced) waiting to be
  // stopped by the retirer; a name in retiring_names_ is not started again
  // until its old runner has stopped (they could share files).
  std::deque<std::unique_ptr<PipelineRunner>> to_retire_;
  std::multiset<std::string> retiring_names_;
  bool retire_stop_ = false;
  std::condition_variable retire_cv_;  // with mu_
  std::thread retire_thread_;
  // Queue sequence of the last regular health report queued (0: none).
  uint64_t queued_health_seq_ = 0;
  uint64_t reported_dropped_ = 0;  // drops already in recent_errors_
  uint64_t reported_refused_ = 0;

  std::mutex loop_mu_;
  std::condition_variable loop_cv_;
  bool loop_stop_ = false;
  bool health_now_ = false;  // report at once (desired state was acted on)
  std::thread health_thread_;

  // Store-and-forward for the mqtt output (docs/design/edge-queue.md): the
  // pipelines append to queue_ (its own lock, never mu_), drainer_ sends.
  // Null if the queue could not be opened (then records go straight to MQTT).
  std::unique_ptr<OutboundQueue> queue_;
  std::unique_ptr<QueueDrainer> drainer_;
  // The node's own messages (health, logs): same mechanism, own bound and a
  // small share of the broker's message rate.
  std::unique_ptr<OutboundQueue> node_queue_;
  std::unique_ptr<QueueDrainer> node_drainer_;

  // The labels pipelines see now (`set` follows relabels without a
  // restart). Its own lock: pipeline threads read it, never taking mu_.
  mutable std::mutex labels_mu_;
  Labels current_labels_;
};

}  // namespace cairn::edge
