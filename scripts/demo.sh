#!/usr/bin/env bash
# Sets up the machine and runs the main job: a local 5-validator testnet
# (fresh genesis ceremony, five `senatus node` processes on 127.0.0.1, every
# port TLS pinned to genesis), shown healthy, with the keys of its agents,
# operator, auditor and broker sealed in the identity registry, then driven:
# records written
# through different validators, one validator crashed and restarted, one
# renewing its TLS key, the replicated ledger verified from
# genesis, and a governed agent's scenario: a permitted payment whose token
# a broker verifies offline and redeems exactly once with the agent's
# signed presentation, a tampered amount refused, the broker's retry refused
# certifying nobody, a second presentation by the agent refused and the
# agent certified on its own two signatures (its next decision is DENY), a blocklisted transfer denied, an uncertain agent silenced, and
# personal data kept from an external endpoint; an auditor replays the
# payment decision from the ledger; then the transfer limit is amended (every
# validator reviews and votes, three sign the seal) and the same large
# transfer, silenced under version 1, is permitted under version 2; an
# agent signing as another, an unregistered key and an unsigned read are
# refused; last,
# validator 4's copy of the sealed policy is edited on disk: it locks
# itself, every validator validates its shutdown certificate, and the other
# four keep deciding. Finally every validator's ledger is replayed through
# the replicated core's apply alone, which must give the state digest that
# validator reports at every index, and an auditor's independent check
# (Python: SHA3-256 and Ed25519 only) verifies who asked every decision in an
# export of the ledger. The testnet is stopped at the end
# unless SENATUS_KEEP=1 (then stop it with `senatus testnet down --dir DIR`).
#
# Usage: scripts/demo.sh [DIR]   (default: a fresh temporary directory)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
cargo build --locked -p senatus-node --bin senatus
SENATUS="$CARGO_TARGET_DIR/debug/senatus"
DIR="${1:-$(mktemp -d "${TMPDIR:-/tmp}/senatus-demo.XXXXXX")}"

stop() {
    if [ "${SENATUS_KEEP:-0}" != "1" ]; then
        echo "== testnet down"
        "$SENATUS" testnet down --dir "$DIR" || true
    else
        echo "== left running: $SENATUS testnet down --dir $DIR"
    fi
}
trap stop EXIT

echo "== testnet up in $DIR (genesis ceremony on first use)"
"$SENATUS" testnet up --dir "$DIR"
"$SENATUS" genesis verify "$DIR" >/dev/null && echo "genesis verified"
# Every port is TLS 1.3 pinned to genesis (no certificate authority): a
# client proves it reaches a validator of this chain with genesis alone.
export SENATUS_GENESIS="$DIR/genesis.json"

api_of() { sed -n 's/^api *= *"\(.*\)"/\1/p' "$DIR/node-$1/node.toml"; }
# Every caller signs with a key sealed in the registry: the ceremony of a
# local testnet made one per example identity.
K="$DIR/clients"
OPERATOR="$K/operator-1.key"
AUDITOR="$K/auditor-1.key"

echo "== who may call: the sealed identity registry (policy/identities.toml)"
python3 - "$DIR/policy/identities.toml" <<'PY'
import sys, tomllib
for i in tomllib.load(open(sys.argv[1], "rb"))["identity"]:
    scope = f" of {i['tenant']} as {', '.join(i['actors'])}" if "tenant" in i else ""
    scope += f" for {', '.join(i['surfaces'])}" if "surfaces" in i else ""
    print(f"  {i['role']:<8} {i['name']:<12} key {i['key']}{scope}")
PY

echo "== operator records through validators 1, 3 and 5 (each forwards to the leader)"
for id in 1 3 5; do
    "$SENATUS" ledger append --key "$OPERATOR" --api "$(api_of "$id")" "demo record written via validator $id"
done

echo "== crash validator 2 (SIGKILL), write while it is down, restart it"
"$SENATUS" testnet kill --dir "$DIR" --node 2
"$SENATUS" ledger append --key "$OPERATOR" --api "$(api_of 4)" "written while validator 2 was down"
"$SENATUS" testnet start --dir "$DIR" --node 2
"$SENATUS" testnet wait --dir "$DIR"
"$SENATUS" testnet status --dir "$DIR"

echo "== validator 5 renews its TLS key from its identity key and restarts with it"
"$SENATUS" genesis tls --config "$DIR/node-5/node.toml" --days 90
"$SENATUS" testnet kill --dir "$DIR" --node 5
"$SENATUS" testnet start --dir "$DIR" --node 5
"$SENATUS" testnet wait --dir "$DIR"

echo "== verify validator 2's ledger from genesis (live) and an export of validator 4's"
"$SENATUS" ledger verify --key "$AUDITOR" --genesis "$DIR/genesis.json" --api "$(api_of 2)"
"$SENATUS" ledger export --key "$AUDITOR" --api "$(api_of 4)" --out "$DIR/ledger-export.jsonl"
"$SENATUS" ledger verify --genesis "$DIR/genesis.json" --file "$DIR/ledger-export.jsonl"
echo "== a governed agent asks before acting"
B="$DIR/broker"
# The broker holds genesis from the ceremony (out of band); it fetches the
# seal chain only from validators of that genesis, over TLS pinned to it.
mkdir -p "$B" && cp "$DIR/genesis.json" "$B/genesis.json"
"$SENATUS" broker fetch-chain --api "$(api_of 1)" --out "$B" --genesis "$B/genesis.json"
PAY='{"amount": 50000, "currency": "EUR", "to_account": "acct-supplier-7"}'
echo "-- payments.transfer of 500.00 EUR, within acme's sealed limit (asked via validator 3)"
"$SENATUS" decide --api "$(api_of 3)" --surface payments --action transfer --actor agent-7 --key "$K/agent-7.key" \
    --tenant acme --params "$PAY" --idempotency-key demo-1 --token-out "$DIR/permit.token" \
    | tee "$DIR/permit.out"
DECISION_ID=$(sed -n 's/^decision id: //p' "$DIR/permit.out")
echo "-- the payment service's broker verifies the token offline (genesis + seal chain only)"
"$SENATUS" broker verify --genesis "$B/genesis.json" --seals "$B/seals.json" \
    --token-file "$DIR/permit.token" --surface payments --action transfer --tenant acme --params "$PAY"
echo "-- the agent tampers with the amount after the decision: the broker refuses"
if "$SENATUS" broker verify --genesis "$B/genesis.json" --seals "$B/seals.json" \
    --token-file "$DIR/permit.token" --surface payments --action transfer --tenant acme \
    --params '{"amount": 5000000, "currency": "EUR", "to_account": "acct-supplier-7"}'; then
    echo "demo: a tampered request verified" >&2; exit 1
fi
echo "-- agent-7 hands the token to the payment service's broker: one presentation, signed by"
echo "   agent-7, naming broker-1 and binding the exact params text"
"$SENATUS" present --key "$K/agent-7.key" --broker broker-1 --token-file "$DIR/permit.token" \
    --params "$PAY" --out "$DIR/permit.presented"
echo "-- broker-1 redeems it (its own signed call, with agent-7's presentation): once, exactly once"
REDEEM=(--genesis "$B/genesis.json" --seals "$B/seals.json" --token-file "$DIR/permit.token"
        --surface payments --action transfer --tenant acme --params "$PAY" --key "$K/broker-1.key")
"$SENATUS" broker redeem --api "$(api_of 5)" "${REDEEM[@]}" --presentation-file "$DIR/permit.presented"
echo "-- broker-1 retries with the same presentation: refused, and nobody is certified"
if "$SENATUS" broker redeem --api "$(api_of 2)" "${REDEEM[@]}" --presentation-file "$DIR/permit.presented"; then
    echo "demo: a token was redeemed twice" >&2; exit 1
fi
echo "-- agent-7 presents the same token a second time: two distinct presentations, both signed"
echo "   by agent-7, of one nonce: a replay by agent-7. It is certified, every validator"
echo "   validates the certificate, and agent-7's next decision is DENY"
"$SENATUS" present --key "$K/agent-7.key" --broker broker-1 --token-file "$DIR/permit.token" \
    --params "$PAY" --out "$DIR/permit.presented-again"
echo "   first presentation:  $(cat "$DIR/permit.presented")"
echo "   second presentation: $(cat "$DIR/permit.presented-again")"
if "$SENATUS" broker redeem --api "$(api_of 2)" "${REDEEM[@]}" --presentation-file "$DIR/permit.presented-again"; then
    echo "demo: a token was redeemed twice" >&2; exit 1
fi
for _ in $(seq 1 100); do   # bounded: at most 20 s
    "$SENATUS" certificates list --api "$(api_of 3)" | grep -q "token-replayed against agent acme/agent-7, .*ledger index" && break
    sleep 0.2
done
"$SENATUS" certificates list --api "$(api_of 3)"
"$SENATUS" decide --api "$(api_of 1)" --surface payments --action transfer --actor agent-7 --key "$K/agent-7.key" \
    --tenant acme --params "$PAY" --idempotency-key demo-after-replay
echo "-- the scenario goes on with agent-8"
echo "-- a transfer to a blocklisted account: DENY, with a signed receipt"
"$SENATUS" decide --api "$(api_of 1)" --surface payments --action transfer --actor agent-8 --key "$K/agent-8.key" \
    --tenant acme --params '{"amount": 100, "currency": "EUR", "to_account": "acct-sanctioned-0001"}'
echo "-- an agent that is unsure of itself (uncertainty 0.9 >= alpha 0.7): SILENCE"
"$SENATUS" decide --api "$(api_of 4)" --surface payments --action transfer --actor agent-8 --key "$K/agent-8.key" \
    --tenant acme --params "$PAY" --uncertainty 900
echo "-- an export of personal data to an external endpoint: DENY"
"$SENATUS" decide --api "$(api_of 2)" --surface data --action export --actor agent-8 --key "$K/agent-8.key" --tenant acme \
    --params '{"dataset": "contacts of alice@example.org", "destination": "https://upload.partner.example/in", "rows": 10}'
"$SENATUS" testnet wait --dir "$DIR"
"$SENATUS" ledger verify --key "$AUDITOR" --genesis "$DIR/genesis.json" --api "$(api_of 3)"
echo "== an auditor replays the payment decision from validator 5's ledger"
"$SENATUS" replay "$DECISION_ID" --key "$AUDITOR" --genesis "$DIR/genesis.json" --api "$(api_of 5)" \
    --token-file "$DIR/permit.token"

echo "== the policy changes only by amendment: raise acme's transfer limit to 2,000.00"
BIG='{"amount": 150000, "currency": "EUR", "to_account": "acct-supplier-7"}'
echo "-- a transfer of 1,500.00 EUR under version 1: above the limit, so no permit"
"$SENATUS" decide --api "$(api_of 2)" --surface payments --action transfer --actor agent-8 --key "$K/agent-8.key" \
    --tenant acme --params "$BIG" --idempotency-key demo-big-v1
rm -rf "$DIR/policy-v2" && cp -r "$DIR/policy" "$DIR/policy-v2"
sed -i 's/^version = 1$/version = 2/' "$DIR/policy-v2/constitution.toml"
sed -i '0,/"transfer_limit": 100000,/s//"transfer_limit": 200000,/' "$DIR/policy-v2/entities.json"
"$SENATUS" amend propose --api "$(api_of 1)" --policy "$DIR/policy-v2" \
    --key "$DIR/authority.key" --justification "acme's supplier payments grew" | tee "$DIR/proposal.out"
PROPOSAL=$(sed -n 's/^proposal \([0-9a-f]\{64\}\) .*/\1/p' "$DIR/proposal.out")
for _ in $(seq 1 100); do   # bounded: at most 20 s
    "$SENATUS" seal chain --api "$(api_of 3)" --genesis "$DIR/genesis.json" | grep -q "(2 seals)" && break
    sleep 0.2
done
"$SENATUS" amend status --api "$(api_of 4)" "$PROPOSAL"
"$SENATUS" seal chain --api "$(api_of 3)" --genesis "$DIR/genesis.json"
echo "-- the same transfer after the seal: every validator decides under version 2"
"$SENATUS" decide --api "$(api_of 5)" --surface payments --action transfer --actor agent-8 --key "$K/agent-8.key" \
    --tenant acme --params "$BIG" --idempotency-key demo-big-v2
"$SENATUS" testnet wait --dir "$DIR"
"$SENATUS" ledger verify --key "$AUDITOR" --genesis "$DIR/genesis.json" --api "$(api_of 1)"

echo "== tampering: validator 4's copy of the sealed policy (version 2) is edited on disk"
data_of() { sed -n 's/^data_dir *= *"\(.*\)"/\1/p' "$DIR/node-$1/node.toml"; }
DATA4="$(data_of 4)"; case "$DATA4" in /*) ;; *) DATA4="$DIR/node-4/$DATA4" ;; esac
echo "" >> "$DATA4/sealed/v2/entities.json"
for _ in $(seq 1 100); do   # bounded: at most 20 s
    "$SENATUS" certificates list --api "$(api_of 1)" | grep -q "policy-drift against validator 4" && break
    sleep 0.2
done
"$SENATUS" certificates list --api "$(api_of 2)" --out "$DIR/certificates"
for f in "$DIR"/certificates/*.cert; do
    "$SENATUS" certificates verify "$f" --genesis "$DIR/genesis.json" --api "$(api_of 5)" --policy "$DIR/policy"
done
echo "-- validator 4 is locked down: it decides nothing"
if "$SENATUS" decide --api "$(api_of 4)" --surface payments --action transfer --actor agent-8 --key "$K/agent-8.key" \
    --tenant acme --params "$PAY" --idempotency-key demo-locked; then
    echo "validator 4 decided while locked down" >&2
    exit 1
fi
echo "-- the other four keep deciding, without validator 4"
"$SENATUS" decide --api "$(api_of 2)" --surface payments --action transfer --actor agent-8 --key "$K/agent-8.key" \
    --tenant acme --params "$PAY" --idempotency-key demo-after-lockdown

echo "== who is asking: impersonation and unregistered keys are refused before the ledger"
echo "-- agent-8 signs a request naming agent-7 as the actor: refused (agent-8 may act only as itself)"
if "$SENATUS" decide --api "$(api_of 1)" --surface payments --action transfer --actor agent-7 \
    --key "$K/agent-8.key" --tenant acme --params "$PAY" --idempotency-key demo-impersonation; then
    echo "demo: an impersonation was decided" >&2; exit 1
fi
echo "-- a key no amendment registered: refused"
"$SENATUS" keygen --role agent --out "$DIR/stranger.key"
if "$SENATUS" decide --api "$(api_of 1)" --surface payments --action transfer --actor agent-8 \
    --key "$DIR/stranger.key" --tenant acme --params "$PAY" --idempotency-key demo-stranger; then
    echo "demo: an unregistered key was decided" >&2; exit 1
fi
echo "-- an auditor key that is not in the registry cannot read the ledger"
"$SENATUS" keygen --role auditor --out "$DIR/stranger-auditor.key"
if "$SENATUS" ledger export --key "$DIR/stranger-auditor.key" --api "$(api_of 2)" \
    --out "$DIR/stranger-export.jsonl"; then
    echo "demo: an unregistered auditor read the ledger" >&2; exit 1
fi

echo "== every validator's ledger, replayed through the replicated core alone, gives the state digest it reports at every index"
for id in 1 2 3 4 5; do
    "$SENATUS" ledger verify --key "$AUDITOR" --genesis "$DIR/genesis.json" --api "$(api_of "$id")"
done

echo "== an auditor proves who asked and who handed what to whom: every decision's agent signature, every
   redemption's presentation and broker signature, and the agent certificate, with SHA3-256 and Ed25519 alone"
"$SENATUS" ledger export --key "$AUDITOR" --api "$(api_of 1)" --out "$DIR/final-export.jsonl"
"$SENATUS" broker fetch-chain --api "$(api_of 1)" --out "$B" --genesis "$B/genesis.json"
python3 scripts/verify-vectors.py --export "$DIR/final-export.jsonl" --genesis "$DIR/genesis.json" \
    --seals "$B/seals.json" --policy "$DIR/policy" --policy "$DIR/policy-v2"

echo "== metrics of validator 1 (excerpt)"
metrics=$(sed -n 's/^metrics *= *"\(.*\)"/\1/p' "$DIR/node-1/node.toml")
python3 - "$metrics" <<'PY'
import sys, urllib.request
text = urllib.request.urlopen(f"http://{sys.argv[1]}/metrics", timeout=5).read().decode()
print("\n".join(l for l in text.splitlines() if l.startswith(("senatus_raft_", "senatus_ledger_", "senatus_requests_total"))))
PY
