#!/usr/bin/env bash
# Writes the protobuf seeds of fuzz/corpus/fuzz_rpc_request/ with protoc
# --encode (the text seeds of the other targets are written by hand). Run it
# after changing schemas/ when a seed should show a new field.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=fuzz/corpus/fuzz_rpc_request
mkdir -p "$out"
stamp=$'1\ncairn-principal=user:alice\n'
reply='cairn/v1/reply/user:alice/ctl-1/7'
# seed NAME TYPE METHOD TEXT_PROTO [HEADER]
seed() {
  local name=$1 type=$2 method=$3 text=$4 header=${5:-$stamp}
  { printf '%s\n%s\n%s\n%s' "cairn.v1.$type" "$method" "$reply" "$header"
    printf '%s' "$text" | protoc --encode="cairn.v1.$type" -Ischemas schemas/cairn/v1/rpc.proto schemas/cairn/v1/node.proto \
      schemas/cairn/v1/pipeline.proto schemas/cairn/v1/events.proto schemas/cairn/v1/edge_cache.proto
  } >"$out/$name"
}
seed get-workspace GetWorkspaceRequest GetWorkspace 'name: "demo"'
seed create-token CreateTokenRequest CreateToken 'workspace: "demo" uses: 1 ttl_seconds: 600 labels { key: "env" value: "prod" }'
seed list-nodes ListNodesRequest ListNodes 'workspace: "demo" selector: "env=production,region in (us-east-1,eu-west-1),!legacy"'
seed label-node LabelNodeRequest LabelNode 'workspace: "demo" name: "edge-1" set { key: "tier" value: "db" } remove: "old"'
seed bootstrap BootstrapRequest Bootstrap 'token: "cairn1.AAAA" node_name: "edge-1" labels { key: "env" value: "prod" } csr_pem: "-----BEGIN CERTIFICATE REQUEST-----\nMIHUMH0CAQAwGzEZMBcGA1UEAwwQbm9kZTpkZW1vOmVkZ2UtMTBZMBMGByqGSM49\nAgEGCCqGSM49AwEHA0IABCtNIyWltJKLRBFyN7HJLEmUTs583QRBzhYz5M+hBEZR\nBmhBfUyRW9Ys1iuXoKCptK/T6dnaFomqWlyremor2fqgADAKBggqhkjOPQQDAgNH\nADBEAiBs3oA2dSqAQeuiFGe2LB3CHCIhcan7WdmAcpPJiAbHPgIgZbDspTADBHDM\ny1wtiRXvxeomTFkbmJWdQMMvdtyufWM=\n-----END CERTIFICATE REQUEST-----\n"' $'1\ncairn-principal=bootstrap\n'
seed create-user CreateUserRequest CreateUser 'name: "bob"'
seed grant-role GrantRoleRequest GrantRole 'user: "bob" workspace: "demo" role: "operator"'
seed renew RenewCertificateRequest RenewCertificate 'csr_pem: "-----BEGIN CERTIFICATE REQUEST-----\n-----END CERTIFICATE REQUEST-----\n"' $'1\ncairn-principal=node:demo:edge-1\n'
seed apply-pipeline ApplyPipelineRequest ApplyPipeline 'pipeline { name: "app-errors" workspace: "demo" selector: "env=production" spec { input { generate { interval_ms: 1000 message: "ERROR disk" } } processors { filter { contains: "ERROR" } } output { file { path: "out/app.log" } } } }'
seed apply-regex ApplyPipelineRequest ApplyPipeline 'pipeline { name: "re" workspace: "demo" spec { input { file { path: "/var/log/syslog" } } processors { filter { regex: "(a+)+$" } } output { stdout {} } } }'
seed unstamped GetWorkspaceRequest GetWorkspace 'name: "demo"' $'0\n'
seed two-stamps GetWorkspaceRequest GetWorkspace 'name: "demo"' $'2\ncairn-principal=user:alice\ncairn-principal=svc:registry\n'
seed unknown-method Empty NoSuchMethod ''
seed node-health NodeHealth Health 'seq: 7 cpu_percent: 12.5 pipelines { name: "app-errors" version: 3 state: RUNNING }'
seed desired-state DesiredState Desired 'pipelines { name: "app-errors" version: 3 digest: "abc" }'
printf 'cairn.v1.GetWorkspaceRequest\nGetWorkspace\ncairn/v1/reply/#\n1\ncairn-principal=user:alice\n\n\x04demo' >"$out/wildcard-reply"
printf 'cairn.v1.GetWorkspaceRequest\nGetWorkspace\ncairn/v1/other/x\n1\ncairn-principal=user:alice\n\n\x04demo' >"$out/foreign-reply"
printf 'cairn.v1.Pipeline\n\n\n0\n\x0a\x02p1\x12\x04demo\x22\x00' >"$out/truncated-pipeline"
