#include "help.h"

#include <map>

namespace cairn::ctl {
namespace {

constexpr char kUsage[] = R"HELP(usage: cairnctl [-w WORKSPACE] [-o table|json] COMMAND ...

  login [--broker-url URL] [--ca-file FILE] [--user NAME] [--password-file FILE | --password-stdin]
  logout                                remove the stored credential
  whoami                                who the broker says you are, and your roles
  user create NAME | list | delete NAME | passwd [NAME] [--password-stdin]
  role grant USER ROLE -w WS|'*'        ROLE: viewer, operator or admin; '*' = cluster-wide
  role revoke USER -w WS|'*'
  credential create NAME [--ttl DURATION] | list | revoke NAME     (read-only, one workspace)
  cert revoke SERIAL                    revoke one node certificate of the workspace
  workspace create NAME [--description TEXT]
  workspace list | get NAME | delete NAME [--force]
  token create [--label k=v]... [--ttl DURATION] [--uses N] [--description TEXT]
                                        (defaults: --uses 1 --ttl 24h; 0 = unlimited / never)
  token list | revoke ID
  node list [-l SELECTOR] | get NAME | revoke NAME
  node label NAME k=v... [k-]...        (k- removes label k)
  node logs NAME [-f]                   the node's warnings, errors and pipeline log lines, live:
                                        -f follows; without it, what arrives within --timeout
                                        (not retained; the node sends at most one batch a second)
  pipeline apply -f FILE [--dry-run]
  pipeline list | get NAME | delete NAME | status NAME
  events [--count N]                    follow the workspace's events (Ctrl-C stops)

`cairnctl COMMAND --help` explains one command group.

Connection: each setting comes from the flag, else the environment, else the
login config that `cairnctl login` wrote ($XDG_CONFIG_HOME/cairn/config or
~/.config/cairn/config; its CA file and credential apply to its broker only).
  --broker-url URL       CAIRN_BROKER_URL      ssl://host:port
  --ca-file FILE         CAIRN_CA_FILE         CA that verifies the broker
  --user NAME            CAIRN_USER            user name (MQTT username user:NAME)
  --password-file FILE   CAIRN_PASSWORD_FILE   (or CAIRN_PASSWORD)
  -w, --workspace WS     CAIRN_WORKSPACE
  --timeout DURATION     how long to wait for a service's reply (default 10s)

Exit codes: 0 done; 1 failed (not connected, refused, not found, ...);
2 usage error or invalid argument.
)HELP";

constexpr char kLogin[] = R"HELP(usage: cairnctl login [--broker-url URL] [--ca-file FILE] [--user NAME]
                     [--password-file FILE | --password-stdin]

Checks the credential with the registry (WhoAmI) and stores broker URL, CA
file, user and password in $XDG_CONFIG_HOME/cairn/config (else
~/.config/cairn/config), mode 0600 in a 0700 directory. Nothing is stored if
the check fails. Later commands use it when no flag or CAIRN_* variable says
otherwise; the stored CA file and credential apply to the stored broker only.

Broker URL, CA file and user default to CAIRN_BROKER_URL, CAIRN_CA_FILE,
CAIRN_USER, then the stored login. The password comes from --password-file,
--password-stdin (one line), or a prompt without echo when stdin is a
terminal; CAIRN_PASSWORD(_FILE) is not stored by login.

Prints "logged in to URL as user:NAME (roles: ...)"; with -o json the WhoAmI
answer. Exit 0, or 1 when the broker or registry refused.

usage: cairnctl logout
Removes user and password from the login config (broker URL and CA file
stay, so `cairnctl login --user NAME` logs in again). Exit 0, also when
nothing was stored.
)HELP";

constexpr char kWhoAmI[] = R"HELP(usage: cairnctl whoami

Asks the registry who the broker says you are: principal (user:NAME), kind,
role bindings (WORKSPACE=ROLE, '*' = cluster-wide) and the broker in use.
-o json prints {"principal": ..., "kind": ..., "bindings": [{"workspace": ..., "role": ...}]}.
)HELP";

constexpr char kUser[] = R"HELP(usage: cairnctl user create NAME
       cairnctl user list
       cairnctl user delete NAME
       cairnctl user passwd [NAME] [--password-stdin]

Users are people; the MQTT username of user NAME is user:NAME. NAME is a DNS
label (a-z, 0-9, '-'); "user:NAME" is accepted too.

  create NAME   creates a user with no role and a generated password, printed
                alone on stdout (once; it is never shown again). With -o json:
                {"username": "user:NAME", "password": "..."}. Cluster admin only.
  list          NAME, USERNAME, ROLES (WORKSPACE=ROLE,...; '*' = cluster-wide), AGE
  delete NAME   removes the user and its roles; its live sessions are cut
  passwd [NAME] sets a new, generated password for NAME (a cluster admin) or,
                without NAME, for yourself, and prints it alone. With
                --password-stdin the new password is read from stdin (one
                line) and "password of user:NAME changed" is printed. Changing
                your own password also updates a stored login.
)HELP";

constexpr char kRole[] = R"HELP(usage: cairnctl role grant USER ROLE -w WORKSPACE
       cairnctl role grant USER ROLE -w '*'
       cairnctl role revoke USER -w WORKSPACE|'*'

ROLE, weakest first: viewer (read only), operator (pipelines, labels,
tokens, revoking nodes and certificates, integrator credentials), admin
(also deleting the workspace and granting roles in it). A user holds at most
one role per workspace; grant replaces it. -w '*' binds cluster-wide (a
cluster admin may create workspaces and users). -w must be given here:
CAIRN_WORKSPACE is not used for grants.
Prints "user:NAME is now ROLE in workspace WS" / "... has no role in workspace WS any more".
)HELP";

constexpr char kCredential[] = R"HELP(usage: cairnctl credential create NAME -w WORKSPACE [--ttl DURATION]
       cairnctl credential list -w WORKSPACE
       cairnctl credential revoke NAME -w WORKSPACE

Integrator credentials read one workspace's node status, health, logs,
events and data streams over MQTT (any v5 or 3.1.1 client), write nothing
and call no RPC. MQTT username: cred:WORKSPACE:NAME.

  create   prints the password alone on stdout (once). With -o json:
           {"username": "cred:WORKSPACE:NAME", "password": "..."}.
           --ttl: "30d", "12h", ...; default 0 = never expires.
  list     NAME, USERNAME, STATE (valid|expired|revoked), EXPIRES, CREATED BY, AGE
  revoke   refuses the credential from now on and cuts its live sessions
Needs role operator in the workspace.
)HELP";

constexpr char kCert[] = R"HELP(usage: cairnctl cert revoke SERIAL -w WORKSPACE

Revokes one node certificate by serial; the broker refuses it from then on
and cuts its session. The node's name stays usable with its other
certificates (to cut a node entirely: cairnctl node revoke NAME). SERIAL is
hex as `openssl x509 -noout -serial` prints it ("serial=" prefix, colons,
case and leading zeros do not matter). Needs role operator in the workspace.
)HELP";

constexpr char kToken[] = R"HELP(usage: cairnctl token create [--label k=v]... [--ttl DURATION] [--uses N] [--description TEXT]
       cairnctl token list
       cairnctl token revoke ID

Bootstrap tokens let a node join the workspace (-w). A token is good for
--uses N bootstraps (default 1; 0 = unlimited) within --ttl (default 24h;
0 = never expires). create prints the token alone on stdout.
)HELP";

}  // namespace

const char* Usage() { return kUsage; }

const char* GroupHelp(const std::string& group) {
  static const std::map<std::string, const char*> kPages = {
      {"login", kLogin},           {"logout", kLogin},         {"whoami", kWhoAmI},
      {"user", kUser},             {"users", kUser},           {"role", kRole},
      {"roles", kRole},            {"credential", kCredential}, {"credentials", kCredential},
      {"cert", kCert},             {"certificate", kCert},     {"token", kToken},
      {"tokens", kToken}};
  auto it = kPages.find(group);
  return it == kPages.end() ? nullptr : it->second;
}

}  // namespace cairn::ctl
