#include "cairn/common/db.h"

#include <chrono>
#include <thread>

#include <spdlog/spdlog.h>

namespace cairn {

Error DbError(const std::exception& e) {
  if (dynamic_cast<const pqxx::broken_connection*>(&e)) {
    return Error::Unavailable(std::string("database connection lost: ") + e.what());
  }
  if (auto* v = dynamic_cast<const pqxx::unique_violation*>(&e)) {
    return Error::AlreadyExists(v->what());
  }
  return Error::Internal(std::string("database error: ") + e.what());
}

Status Db::Connect(int wait_s) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(wait_s);
  std::string last;
  for (;;) {
    try {
      std::lock_guard lock(mu_);
      conn_ = std::make_unique<pqxx::connection>(url_);
      return OkStatus();
    } catch (const std::exception& e) {
      last = e.what();
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return Error::Unavailable("cannot connect to PostgreSQL: " + last);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));  // retry back-off
  }
}

Status Db::Tx(const std::function<Status(pqxx::work&)>& fn) {
  std::lock_guard lock(mu_);
  for (int attempt = 0; attempt < 2; ++attempt) {
    bool ran = false;
    try {
      if (!conn_ || !conn_->is_open()) conn_ = std::make_unique<pqxx::connection>(url_);
      pqxx::work tx(*conn_);
      ran = true;
      Status st = fn(tx);
      if (!st.ok()) {
        tx.abort();
        return st;
      }
      tx.commit();
      return OkStatus();
    } catch (const pqxx::broken_connection& e) {
      spdlog::warn("database connection broke ({}); reconnecting", e.what());
      conn_.reset();
      // Retry only if nothing ran: `fn` may have collected results already,
      // and the commit may or may not have happened.
      if (ran || attempt == 1) return DbError(e);
    } catch (const std::exception& e) {
      return DbError(e);
    }
  }
  return Error::Unavailable("database unavailable");
}

Status Db::Migrate(const std::vector<Migration>& migrations) {
  return Tx([&](pqxx::work& tx) -> Status {
    // Any fixed key; serialises concurrent migrators.
    tx.exec("SELECT pg_advisory_xact_lock(7310001)");
    tx.exec(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY, name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())");
    for (const auto& m : migrations) {
      auto r = tx.exec_params("SELECT 1 FROM schema_migrations WHERE version = $1", m.version);
      if (!r.empty()) continue;
      spdlog::info("applying migration {:04d}_{}", m.version, m.name);
      tx.exec(m.sql);
      tx.exec_params("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version,
                     m.name);
    }
    return OkStatus();
  });
}

}  // namespace cairn
