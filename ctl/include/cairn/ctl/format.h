// Output formatting for cairnctl: aligned tables, relative ages, and the one
// escaping rule for text that came over the wire.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cairn::ctl {

// `text` made safe to print on a terminal: anything a node or another user
// wrote (errors, versions, reasons, labels, descriptions, names) goes through
// this before it reaches a table or plain-text output, so it cannot move the
// cursor, recolour, clear the screen, hide text or fake extra lines.
//   \n \r \t                    -> "\n" "\r" "\t" (two characters)
//   other C0 controls, DEL      -> "\xNN"
//   bytes that are not UTF-8    -> "\xNN" each
//   C1 controls (U+0080-U+009F), bidi and zero-width format characters
//   (U+061C, U+200B-U+200F, U+2028-U+202E, U+2060-U+206F, U+FEFF),
//   tag characters (U+E0000-U+E007F) -> "\uNNNN" / "\UNNNNNNNN"
// Printable ASCII (backslash included) and other UTF-8 pass unchanged, so
// a message a service already escaped prints as it was sent.
// JSON output does not use this: the JSON encoder escapes for JSON.
std::string Printable(std::string_view text);

// Columns padded to the widest cell, two spaces apart, header first. Every
// cell goes through Printable().
std::string Table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);
// "5s", "3m", "2h", "4d"; "-" for 0 (never).
std::string Age(int64_t then_ms, int64_t now_ms);
// "k=v,k2=v2" (sorted by key); "<none>" when empty.
std::string LabelString(const std::map<std::string, std::string>& labels);
// "12.5MiB"
std::string Bytes(uint64_t n);

// `text` as a JSON string literal (quotes included), escaped per RFC 8259.
std::string JsonString(std::string_view text);
// {"k": "v", "k2": "v2"} on one line, keys in the given order.
std::string JsonObject(const std::vector<std::pair<std::string, std::string>>& fields);
// What `user create`, `user passwd` and `credential create` print with -o
// json: {"username": USERNAME, "password": PASSWORD}, the username exactly
// what an MQTT client passes ("user:alice", "cred:demo:grafana").
std::string SecretJson(const std::string& username, const std::string& password);

}  // namespace cairn::ctl
