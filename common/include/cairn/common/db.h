// PostgreSQL access (libpqxx 6) shared by the services: one connection
// guarded by a mutex, transactions as closures, pqxx exceptions turned into
// Error values, one transparent reconnect when the connection broke, and the
// numbered-migration runner.
// Thread-safety: thread-safe (calls are serialised).
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include "cairn/common/result.h"

namespace cairn {

struct Migration {
  int version;
  std::string name;
  std::string sql;
};

class Db {
 public:
  explicit Db(std::string url) : url_(std::move(url)) {}

  // Connects, retrying for up to `wait_s` seconds (the database may still be
  // starting).
  Status Connect(int wait_s = 30);

  // Runs `fn` in a transaction and commits if it returns OK. Errors from
  // `fn` roll back. SQL errors become Internal (or the code fn chose). A
  // connection found broken before `fn` runs is re-opened once; one that
  // breaks while `fn` runs is an Unavailable error (never a second run).
  Status Tx(const std::function<Status(pqxx::work&)>& fn);

  // Applies the migrations not yet applied, in version order, under an
  // advisory lock: safe to run twice and from several processes at once.
  Status Migrate(const std::vector<Migration>& migrations);

 private:
  std::string url_;
  std::mutex mu_;
  std::unique_ptr<pqxx::connection> conn_;
};

// Converts the current exception (inside a catch block) to an Error.
Error DbError(const std::exception& e);

}  // namespace cairn
