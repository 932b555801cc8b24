#!/usr/bin/env python3
"""Independent check of docs/vectors against docs/PROTOCOL.md.

Written the way an outside auditor would: only the document, Python's
hashlib SHA3-256 and a stock Ed25519 verifier (the `cryptography` package).
No code is shared with the Rust implementation.

Usage: scripts/verify-vectors.py [VECTORS_DIR]
       scripts/verify-vectors.py --export FILE --genesis GENESIS_JSON
                                 [--seals SEALS_JSON] --policy DIR [--policy DIR ...]

The second form is an auditor's check of who asked: it verifies a ledger
export (senatus ledger export) from genesis, and every decision's agent
signature (PROTOCOL.md 10.1) against the registry of the sealed layer the
decision names (2.1), given the layer directories.
"""

import base64
import datetime
import hashlib
import json
import struct
import sys
import tomllib
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


class Enc:
    """PROTOCOL.md section 1: tag, big-endian integers, length-prefixed bytes."""

    def __init__(self, obj: str, version: int = 1):
        self.b = bytearray(f"senatus/{obj}/v{version}".encode() + b"\x00")

    def u16(self, v):
        self.b += struct.pack(">H", v)
        return self

    def u32(self, v):
        self.b += struct.pack(">I", v)
        return self

    def u64(self, v):
        self.b += struct.pack(">Q", v)
        return self

    def raw32(self, hexstr):
        raw = bytes.fromhex(hexstr)
        assert len(raw) == 32, hexstr
        self.b += raw
        return self

    def bytes_(self, data: bytes):
        self.u32(len(data))
        self.b += data
        return self

    def str_(self, s: str):
        return self.bytes_(s.encode("utf-8"))


def sha3(data: bytes) -> str:
    return hashlib.sha3_256(data).hexdigest()


def validators(e: Enc, vs):
    e.u32(len(vs))
    for v in vs:
        e.u64(v["id"]).raw32(v["identity_key"]).raw32(v["verifying_share"])
        e.str_(v["peer_addr"]).str_(v["api_addr"])


def check(label, got, want):
    if got != want:
        print(f"MISMATCH {label}:\n  computed {got}\n  vector   {want}")
        sys.exit(1)
    print(f"ok  {label}")


def policy_layer_bytes(files):
    """PROTOCOL.md 2: a layer's canonical bytes, from its files' exact bytes."""
    e = Enc("policy-layer").u32(len(files))
    for path in sorted(files, key=lambda p: p.encode("utf-8")):
        e.str_(path).bytes_(files[path])
    return bytes(e.b)


def policy_layer(vec):
    files = {p: c.encode("utf-8") for p, c in vec["files"].items()}
    canonical = policy_layer_bytes(files)
    check("policy layer canonical bytes", canonical.hex(), vec["canonical_bytes"])
    check("policy digest", sha3(canonical), vec["policy_digest"])
    for clause, want in vec["clause_digests"].items():
        body = files[f"policies/{clause}.cedar"]
        d = sha3(bytes(Enc("policy-clause").str_(clause).bytes_(body).b))
        check(f"clause digest {clause}", d, want)
    return vec["policy_digest"]


def genesis(vec, policy_digest):
    g = vec["genesis"]
    assert g["format"] == "senatus.genesis.v1"
    e = Enc("genesis").str_(g["chain_id"]).u64(g["created_at_ms"])
    e.raw32(g["authority_key"]).u16(g["threshold"]).raw32(g["group_key"])
    validators(e, g["validators"])
    e.raw32(g["policy_digest"]).u64(g["policy_version"]).u64(g["epoch_length_decisions"])
    signing = bytes(e.b)
    check("genesis signing bytes", signing.hex(), vec["genesis_signing_bytes"])
    gd = sha3(signing)
    check("genesis digest", gd, vec["genesis_digest"])
    if not ed25519_ok(g["authority_key"], g["signature"], signing):
        print("MISMATCH genesis signature does not verify")
        sys.exit(1)
    print("ok  genesis signature (Ed25519, authority key)")
    if policy_digest is not None:
        check("genesis seals the vector policy layer", g["policy_digest"], policy_digest)

    s = Enc("seal").u64(g["policy_version"]).raw32(g["policy_digest"]).raw32(gd)
    s.u64(0).u16(g["threshold"]).raw32(g["group_key"])
    validators(s, g["validators"])
    check("seal 0 signing bytes", s.b.hex(), vec["seal0_signing_bytes"])
    sd = sha3(bytes(s.b))
    check("seal 0 digest", sd, vec["seal0_digest"])

    n1 = vec["lock_node1"]
    lk = Enc("genesis-lock").raw32(gd).raw32(sd).raw32(g["policy_digest"])
    lk.u64(n1["node_id"]).raw32(n1["identity_key"]).raw32(n1["verifying_share"])
    check("lock digest node 1", sha3(bytes(lk.b)), n1["lock_digest"])


def ledger(vec, genesis_digest):
    check("ledger vector chains from the genesis vector", vec["genesis_digest"], genesis_digest)
    prev = genesis_digest
    for i, e in enumerate(vec["entries"], start=1):
        check(f"ledger entry {i} index", e["index"], i)
        check(f"ledger entry {i} prev_hash", e["prev_hash"], prev)
        pre = Enc("ledger-entry").u64(e["index"])
        pre.b += bytes([e["kind"]])
        pre.bytes_(bytes.fromhex(e["payload"])).raw32(e["prev_hash"])
        h = sha3(bytes(pre.b))
        check(f"ledger entry {i} hash", h, e["hash"])
        check(f"ledger entry {i} encoding", (bytes(pre.b) + bytes.fromhex(h)).hex(), e["encoded"])
        prev = h


def merkle_leaf(data: bytes) -> bytes:
    return hashlib.sha3_256(b"\x00" + data).digest()


def merkle_inner(left: bytes, right: bytes) -> bytes:
    return hashlib.sha3_256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """Largest power of two strictly below n (n >= 2)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def merkle_root(hashes):
    """PROTOCOL.md, Governance tokens: RFC 6962 tree over leaf hashes."""
    if len(hashes) == 1:
        return hashes[0]
    k = split_point(len(hashes))
    return merkle_inner(merkle_root(hashes[:k]), merkle_root(hashes[k:]))


def merkle_path(m, hashes):
    if len(hashes) == 1:
        return []
    k = split_point(len(hashes))
    if m < k:
        return merkle_path(m, hashes[:k]) + [merkle_root(hashes[k:])]
    return merkle_path(m - k, hashes[k:]) + [merkle_root(hashes[:k])]


def merkle_verify(leaf, index, count, proof, root):
    """Walks the path bottom-up the way a broker does, without the tree."""
    if not 0 <= index < count:
        return False
    fn, sn, r = index, count - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = merkle_inner(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = merkle_inner(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def token(vec, gvec):
    g = gvec["genesis"]
    check("token vector chains from the genesis vector", vec["genesis_digest"], gvec["genesis_digest"])
    check("token vector group key is the genesis group key", vec["group_key"], g["group_key"])
    check("token vector seal is seal 0", vec["seal_digest"], gvec["seal0_digest"])
    leaves = vec["leaves"]
    check("token leaf count", vec["leaf_count"], len(leaves))
    hashes = []
    for i, lf in enumerate(leaves):
        # Params: restricted to ASCII strings, integers, booleans and null,
        # for which this json.dumps call is exactly RFC 8785 (JCS).
        jcs = json.dumps(lf["params"], sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        check(f"token {i} params JCS", jcs, lf["params_jcs"])
        check(f"token {i} params digest", sha3(jcs.encode()), lf["params_digest"])
        did = Enc("decision-id").u64(vec["ledger_index"]).raw32(vec["entry_hash"]).u32(lf["position"])
        check(f"token {i} decision id", sha3(bytes(did.b)), lf["decision_id"])
        nonce = Enc("token-nonce").raw32(vec["entry_hash"]).u32(lf["position"])
        check(f"token {i} nonce", sha3(bytes(nonce.b))[:32], lf["nonce"])
        e = Enc("token").raw32(vec["genesis_digest"]).raw32(lf["decision_id"])
        e.u64(vec["ledger_index"]).raw32(vec["entry_hash"]).u32(lf["position"])
        e.b += bytes([lf["outcome"]])
        e.str_(lf["surface"]).str_(lf["action"]).str_(lf["tenant"]).str_(lf["actor"])
        e.raw32(lf["params_digest"]).u64(lf["policy_version"]).raw32(vec["seal_digest"])
        e.u64(vec["epoch"]).u64(lf["issued_at_ms"]).u64(lf["expires_at_ms"])
        e.b += bytes.fromhex(lf["nonce"])
        payload = bytes(e.b)
        check(f"token {i} payload bytes", payload.hex(), lf["payload_bytes"])
        check(f"token {i} token digest", sha3(payload), lf["token_digest"])
        leaf = merkle_leaf(payload)
        check(f"token {i} leaf hash", leaf.hex(), lf["leaf_hash"])
        check(f"token {i} leaf index", lf["leaf_index"], i)
        hashes.append(leaf)
    root = merkle_root(hashes)
    check("token batch Merkle root", root.hex(), vec["root"])
    for i, lf in enumerate(leaves):
        path = merkle_path(i, hashes)
        check(f"token {i} proof", [p.hex() for p in path], lf["proof"])
        proof = [bytes.fromhex(p) for p in lf["proof"]]
        if not merkle_verify(hashes[i], i, len(hashes), proof, root):
            print(f"MISMATCH token {i} proof does not verify")
            sys.exit(1)
        if merkle_verify(hashes[i], (i + 1) % len(hashes), len(hashes), proof, root):
            print(f"MISMATCH token {i} proof verifies at the wrong index")
            sys.exit(1)
    m = Enc("token-batch").raw32(vec["genesis_digest"]).u64(vec["epoch"]).raw32(vec["group_key"])
    m.raw32(vec["root"]).u32(vec["leaf_count"])
    msg = bytes(m.b)
    check("token batch message", msg.hex(), vec["batch_message"])
    if not ed25519_ok(vec["group_key"], vec["signature"], msg):
        print("MISMATCH token batch signature does not verify")
        sys.exit(1)
    print("ok  token batch signature (Ed25519, FROST group key)")
    for i, lf in enumerate(leaves):
        w = Enc("token-wire").bytes_(bytes.fromhex(lf["payload_bytes"]))
        w.u32(lf["leaf_index"]).u32(vec["leaf_count"]).raw32(vec["root"]).u32(len(lf["proof"]))
        for p in lf["proof"]:
            w.raw32(p)
        w.b += bytes.fromhex(vec["signature"])
        check(f"token {i} wire bytes", bytes(w.b).hex(), lf["token_wire"])


def request_bytes(rq):
    """PROTOCOL.md section 10: the governed request encoding."""
    # Params: ASCII strings and integers only, for which this json.dumps call
    # is exactly RFC 8785 (JCS).
    jcs = json.dumps(rq["params"], sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    check(f"request {rq['idempotency_key']} params JCS", jcs, rq["params_jcs"])
    e = Enc("request").str_(rq["surface"]).str_(rq["action"]).str_(rq["actor"]).str_(rq["tenant"])
    e.bytes_(jcs.encode()).u16(rq["uncertainty_permille"])
    resources = sorted(rq["resources"], key=lambda r: r[0].encode())
    names = [r[0] for r in resources]
    assert len(set(names)) == len(names), "resource names must be unique"
    e.u32(len(resources))
    for name, amount in resources:
        e.str_(name).u64(amount)
    e.u32(len(rq["external_endpoints"]))
    for endpoint in rq["external_endpoints"]:
        e.str_(endpoint)
    e.str_(rq["idempotency_key"])
    return bytes(e.b)


def decision_bytes(d):
    """PROTOCOL.md section 11: the decision encoding."""
    reasons = sorted(set(d["reasons"]), key=lambda r: r.encode())
    check("decision reasons are sorted and unique", reasons, d["reasons"])
    e = Enc("decision")
    e.b += bytes([d["outcome"]])
    e.u32(len(reasons))
    for r in reasons:
        e.str_(r)
    e.u64(d["policy_version"])
    return bytes(e.b)


def request_signing_bytes(genesis_digest, request_digest, signed_at_ms):
    """PROTOCOL.md 10.1: what an agent signs."""
    return bytes(Enc("request-signature").raw32(genesis_digest).raw32(request_digest).u64(signed_at_ms).b)


def signed_request_bytes(request, signed_at_ms, key_hex, sig_hex):
    e = Enc("signed-request").bytes_(request).u64(signed_at_ms).raw32(key_hex)
    sig = bytes.fromhex(sig_hex)
    assert len(sig) == 64
    e.b += sig
    return bytes(e.b)


def call_signing_bytes(genesis_digest, method, body, signed_at_ms):
    """PROTOCOL.md 10.2: what an operator or auditor signs for one call."""
    return bytes(Enc("call").raw32(genesis_digest).str_(method).bytes_(body).u64(signed_at_ms).b)


def presentation_signing_bytes(genesis_digest, token_digest, broker, params_hash, presented_at_ms):
    """PROTOCOL.md 10.3: what an agent signs to hand a token to a broker."""
    e = Enc("presentation-signature").raw32(genesis_digest).raw32(token_digest)
    return bytes(e.str_(broker).raw32(params_hash).u64(presented_at_ms).b)


def presentation_bytes(token_digest, broker, params_hash, presented_at_ms, key_hex, sig_hex):
    """PROTOCOL.md 10.3: a presentation as it travels."""
    e = Enc("presentation").raw32(token_digest).str_(broker).raw32(params_hash).u64(presented_at_ms).raw32(key_hex)
    sig = bytes.fromhex(sig_hex)
    assert len(sig) == 64
    e.b += sig
    return bytes(e.b)


def parse_token(wire: bytes, label):
    """PROTOCOL.md 9.6 and 9.3: a token's wire bytes read back strictly."""
    w = Dec(wire, "token-wire")
    payload = w.bytes_()
    leaf_index, leaf_count, root = w.u32(), w.u32(), w.raw32()
    proof = [bytes.fromhex(w.raw32()) for _ in range(w.u32())]
    sig = w.take(64)
    w.done(f"{label}: token")
    p = Dec(payload, "token")
    # "digest" is the payload digest (9.3); "wire_digest" what a
    # presentation names (10.3): SHA3-256 of all of the wire bytes.
    t = {"payload": payload, "leaf_index": leaf_index, "leaf_count": leaf_count, "root": root,
         "proof": proof, "signature": sig.hex(), "digest": sha3(payload), "wire_digest": sha3(wire)}
    t["genesis_digest"], t["decision_id"], t["ledger_index"] = p.raw32(), p.raw32(), p.u64()
    t["entry_hash"], t["position"], t["outcome"] = p.raw32(), p.u32(), p.u8()
    t["surface"], t["action"], t["tenant"], t["actor"] = p.str_(), p.str_(), p.str_(), p.str_()
    t["params_digest"], t["policy_version"], t["seal_digest"], t["epoch"] = p.raw32(), p.u64(), p.raw32(), p.u64()
    t["issued_at_ms"], t["expires_at_ms"], t["nonce"] = p.u64(), p.u64(), p.take(16).hex()
    p.done(f"{label}: token payload")
    return t


def token_signed_by_group(t, group_key):
    """PROTOCOL.md 9.7 steps 4-5: the inclusion proof and the group signature."""
    if not merkle_verify(merkle_leaf(t["payload"]), t["leaf_index"], t["leaf_count"], t["proof"], bytes.fromhex(t["root"])):
        return False
    m = Enc("token-batch").raw32(t["genesis_digest"]).u64(t["epoch"]).raw32(group_key).raw32(t["root"]).u32(t["leaf_count"])
    return ed25519_ok(group_key, t["signature"], bytes(m.b))


def check_presentation(label, pj, t, registry):
    """PROTOCOL.md 10.3: a presentation of token `t` (parse_token) rebuilt from
    its fields, its signature verified, and its key the registered agent of
    the token's tenant and actor (a dict key -> identity, or None to skip).
    Returns the presentation bytes."""
    check(f"{label}: presents the token (SHA3-256 of its wire bytes)", pj["token_digest"], t["wire_digest"])
    check(f"{label}: params hash is SHA3-256 of the params text as handed over",
          sha3(pj["params_json"].encode("utf-8")), pj["params_hash"])
    sb = presentation_signing_bytes(t["genesis_digest"], pj["token_digest"], pj["broker"], pj["params_hash"],
                                    pj["presented_at_ms"])
    check(f"{label}: signing bytes", sb.hex(), pj["signing_bytes"])
    if not ed25519_ok(pj["key"], pj["signature"], sb):
        print(f"MISMATCH {label}: presentation signature does not verify under the agent's key")
        sys.exit(1)
    print(f"ok  {label}: presentation signature (Ed25519, agent key)")
    other = presentation_signing_bytes(t["genesis_digest"], pj["token_digest"], pj["broker"] + "x",
                                       pj["params_hash"], pj["presented_at_ms"])
    check(f"{label}: the signature does not cover another broker", ed25519_ok(pj["key"], pj["signature"], other), False)
    pb = presentation_bytes(pj["token_digest"], pj["broker"], pj["params_hash"], pj["presented_at_ms"],
                            pj["key"], pj["signature"])
    check(f"{label}: presentation bytes", pb.hex(), pj["presentation"])
    d = Dec(pb, "presentation")
    d.raw32()
    check(f"{label}: broker name within 256 bytes", len(d.bytes_()) <= 256, True)
    d.raw32(), d.u64(), d.raw32(), d.take(64)
    d.end()
    if registry is not None:
        who = registry.get(pj["key"])
        check(f"{label}: key is the registered agent of {t['tenant']}/{t['actor']}",
              who is not None and who["role"] == "agent" and who.get("tenant") == t["tenant"]
              and t["actor"] in who.get("actors", []), True)
        check(f"{label}: agent name", who["name"], pj["agent"])
    return pb


def presentation(vec, gvec, tvec):
    """PROTOCOL.md 10.3: an agent's hand-off of the token vector's leaf 0."""
    gd = gvec["genesis_digest"]
    check("presentation vector is of the genesis vector's chain", vec["genesis_digest"], gd)
    tk = vec["token"]
    check("presentation token is the token vector's leaf 0", tk["token_wire"], tvec["leaves"][0]["token_wire"])
    wire = bytes.fromhex(tk["token_wire"])
    t = parse_token(wire, "presentation")
    check("presentation token payload digest (9.3) is the token vector's", (t["digest"], t["digest"]),
          (tk["payload_digest"], tvec["leaves"][0]["token_digest"]))
    check("presentation names the token by SHA3-256 of its wire bytes", t["wire_digest"], vec["token_digest"])
    check("presentation token digest is not the payload digest", vec["token_digest"] != t["digest"], True)
    # The same payload with one signature bit flipped is another token to it.
    spoiled = bytearray(wire)
    spoiled[-1] ^= 1
    check("presentation a spoiled signature is another token", sha3(bytes(spoiled)) != vec["token_digest"], True)
    check("presentation token agent and surface", (t["tenant"], t["actor"], t["surface"]),
          (tk["tenant"], tk["actor"], tk["surface"]))
    check("presentation token is of this chain", t["genesis_digest"], gd)
    check("presentation token params digest", t["params_digest"], tk["token_params_digest"])
    a = vec["agent"]
    check("presentation agent key is its seed's", ed25519_public_of(a["secret_seed"]), a["key"])
    reg = a["registry"]
    registry = {a["key"]: {"name": a["name"], "role": reg["role"], "tenant": reg["tenant"], "actors": reg["actors"]}}
    pj = {"agent": a["name"], "key": a["key"], "token_digest": vec["token_digest"], "broker": vec["broker"],
          "params_json": vec["params_json"], "params_hash": vec["params_hash"],
          "presented_at_ms": vec["presented_at_ms"], "signing_bytes": vec["signing_bytes"],
          "signature": vec["signature"], "presentation": vec["presentation"]}
    pb = check_presentation("presentation vector", pj, t, registry)
    check("presentation digest", sha3(pb), vec["presentation_digest"])
    # The text is bound, not its canonical form: the same params, canonical.
    params = json.loads(vec["params_json"])
    jcs = json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    check("presentation params are the token's params (JCS digest)", sha3(jcs.encode()), t["params_digest"])
    check("presentation binds the text, not its canonical form", vec["params_hash"] != t["params_digest"], True)
    # Ed25519 is deterministic (RFC 8032): the seed signs to the same bytes.
    resigned = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(a["secret_seed"])).sign(bytes.fromhex(vec["signing_bytes"]))
    check("presentation re-signed with the agent seed", resigned.hex(), vec["signature"])
    flipped = bytearray(pb)
    flipped[-1] ^= 1
    check("presentation a flipped signature bit is refused",
          ed25519_ok(a["key"], bytes(flipped[-64:]).hex(), bytes.fromhex(vec["signing_bytes"])), False)
    return pb


def requests(vec, gvec, policy_digest, registry=None):
    if policy_digest is not None:
        check("request vector is decided by the policy-layer vector", vec["policy_digest"], policy_digest)
    check("request vector's layer is the genesis policy", vec["policy_digest"], gvec["genesis"]["policy_digest"])
    gd = gvec["genesis_digest"]
    check("request vector is signed for the genesis vector's chain", vec["genesis_digest"], gd)
    encoded = []
    for rq in vec["requests"]:
        key = rq["idempotency_key"]
        b = request_bytes(rq)
        check(f"request {key} bytes", b.hex(), rq["request_bytes"])
        check(f"request {key} digest", sha3(b), rq["request_digest"])
        a = rq["agent"]
        check(f"request {key} agent key is its seed's", ed25519_public_of(a["secret_seed"]), a["key"])
        sb = request_signing_bytes(gd, sha3(b), a["signed_at_ms"])
        check(f"request {key} signing bytes", sb.hex(), a["signing_bytes"])
        if not ed25519_ok(a["key"], a["signature"], sb):
            print(f"MISMATCH request {key}: the agent's signature does not verify")
            sys.exit(1)
        print(f"ok  request {key} agent signature (Ed25519, {a['name']})")
        if registry is not None:
            who = registry.get(a["key"])
            check(f"request {key} key is a registered agent of its tenant and actor",
                  who is not None and who["role"] == "agent" and who["tenant"] == rq["tenant"]
                  and rq["actor"] in who["actors"], True)
        flipped = bytearray(bytes.fromhex(a["signature"]))
        flipped[0] ^= 1
        check(f"request {key} a flipped signature bit is refused", ed25519_ok(a["key"], flipped.hex(), sb), False)
        srb = signed_request_bytes(b, a["signed_at_ms"], a["key"], a["signature"])
        check(f"request {key} signed request bytes", srb.hex(), a["signed_request_bytes"])
        d = rq["decision"]
        check(f"request {key} decision policy version", d["policy_version"], vec["batch"]["policy_version"])
        db = decision_bytes(d)
        check(f"request {key} decision bytes", db.hex(), d["decision_bytes"])
        check(f"request {key} decision digest", sha3(db), d["decision_digest"])
        encoded.append(srb)
    bt = vec["batch"]
    check("decision batch seal is seal 0", bt["seal_digest"], gvec["seal0_digest"])
    assert bt["issued_at_ms"] < bt["expires_at_ms"]
    e = Enc("decision-batch", 2).u64(bt["issued_at_ms"]).u64(bt["expires_at_ms"])
    e.u64(bt["policy_version"]).raw32(bt["seal_digest"]).u64(bt["epoch"])
    e.u32(len(encoded))
    for b in encoded:
        e.bytes_(b)
    check("decision batch bytes", bytes(e.b).hex(), bt["batch_bytes"])
    check("decision batch digest", sha3(bytes(e.b)), bt["batch_digest"])
    c = vec["call"]
    check("call caller key is its seed's", ed25519_public_of(c["secret_seed"]), c["key"])
    body = struct.pack(">QQI", c["from"], c["to"], c["limit"])
    check("call GetLedger body", body.hex(), c["body"])
    cb = call_signing_bytes(gd, c["method"], body, c["signed_at_ms"])
    check("call signing bytes", cb.hex(), c["signing_bytes"])
    check("call signature verifies", ed25519_ok(c["key"], c["signature"], cb), True)
    other = call_signing_bytes(gd, "AppendRecord", body, c["signed_at_ms"])
    check("call signature does not cover another method", ed25519_ok(c["key"], c["signature"], other), False)


# PROTOCOL.md 1.1: Ed25519 as senatus verifies it. OpenSSL (under
# `cryptography`) implements RFC 8032 and accepts, for instance, the
# small-order public key 01 00..00 with R = 01 00..00 and S = 0 for any
# message; the extra rules are checked here, with the curve arithmetic of
# RFC 8032 section 6, before OpenSSL checks the equation.
ED_P = 2**255 - 19
ED_L = 2**252 + 27742317777372353535851937790883648493
ED_D = -121665 * pow(121666, ED_P - 2, ED_P) % ED_P
ED_SQRT_M1 = pow(2, (ED_P - 1) // 4, ED_P)
ED_IDENTITY = (0, 1, 1, 0)


def ed_add(a, b):
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    A = (y1 - x1) * (y2 - x2) % ED_P
    B = (y1 + x1) * (y2 + x2) % ED_P
    C = 2 * t1 * t2 * ED_D % ED_P
    D = 2 * z1 * z2 % ED_P
    E, F, G, H = B - A, D - C, D + C, B + A
    return (E * F % ED_P, G * H % ED_P, F * G % ED_P, E * H % ED_P)


def ed_mul(s, pt):
    q = ED_IDENTITY
    while s > 0:
        if s & 1:
            q = ed_add(q, pt)
        pt = ed_add(pt, pt)
        s >>= 1
    return q


def ed_equal(a, b):
    return (a[0] * b[2] - b[0] * a[2]) % ED_P == 0 and (a[1] * b[2] - b[1] * a[2]) % ED_P == 0


def ed_decode(enc: bytes):
    """RFC 8032 5.1.3, refusing non-canonical encodings (y >= p, or x = 0
    with the sign bit set); None when not a canonical point encoding."""
    y = int.from_bytes(enc, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    if y >= ED_P:
        return None
    x2 = (y * y - 1) * pow(ED_D * y * y + 1, ED_P - 2, ED_P) % ED_P
    if x2 == 0:
        if sign:
            return None
        return (0, y, 1, 0)
    x = pow(x2, (ED_P + 3) // 8, ED_P)
    if (x * x - x2) % ED_P != 0:
        x = x * ED_SQRT_M1 % ED_P
    if (x * x - x2) % ED_P != 0:
        return None
    if (x & 1) != sign:
        x = ED_P - x
    return (x, y, 1, x * y % ED_P)


def ed_small_order(pt) -> bool:
    return ed_equal(ed_mul(8, pt), ED_IDENTITY)


def ed25519_ok(key_hex, sig_hex, msg: bytes) -> bool:
    key, sig = bytes.fromhex(key_hex), bytes.fromhex(sig_hex)
    if len(key) != 32 or len(sig) != 64:
        return False
    a = ed_decode(key)
    if a is None or ed_small_order(a):
        return False
    r = ed_decode(sig[:32])
    if r is None or ed_small_order(r):
        return False
    if int.from_bytes(sig[32:], "little") >= ED_L:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(sig, msg)
        return True
    except InvalidSignature:
        return False


def ed25519_rules(vec):
    """PROTOCOL.md 1.1: the accepted case verifies, every rejected case is
    refused by the rules above (whatever OpenSSL alone would say)."""
    a = vec["accepted"]
    check("ed25519 accepted case", ed25519_ok(a["public_key"], a["signature"], bytes.fromhex(a["message"])), True)
    lax_accepts = 0
    for r in vec["rejected"]:
        msg = bytes.fromhex(r["message"])
        check(f"ed25519 refuses: {r['why']}", ed25519_ok(r["public_key"], r["signature"], msg), False)
        try:
            Ed25519PublicKey.from_public_bytes(bytes.fromhex(r["public_key"])).verify(bytes.fromhex(r["signature"]), msg)
            lax_accepts += 1
        except (InvalidSignature, ValueError):
            pass
    print(f"ok  ed25519: OpenSSL alone accepts {lax_accepts} of the {len(vec['rejected'])} refused cases")


def amendment(vec, gvec):
    """PROTOCOL.md section 16: proposal, votes and the seal they pass."""
    g = gvec["genesis"]
    check("amendment vector chains from the genesis vector", vec["genesis_digest"], gvec["genesis_digest"])
    check("amendment is based on seal 0", vec["seal0_digest"], gvec["seal0_digest"])
    p = vec["proposal"]
    check("proposal base seal is seal 0", p["base_seal_digest"], gvec["seal0_digest"])
    check("proposal base version is the genesis version", p["base_version"], g["policy_version"])
    files = {path: c.encode("utf-8") for path, c in p["layer_files"].items()}
    layer = Enc("policy-layer").u32(len(files))
    for path in sorted(files, key=lambda x: x.encode("utf-8")):
        layer.str_(path).bytes_(files[path])
    layer = bytes(layer.b)
    check("proposal layer bytes", layer.hex(), p["layer_bytes"])
    check("proposal layer digest", sha3(layer), p["layer_digest"])
    assert len(p["justification"].encode("utf-8")) <= 4096
    e = Enc("amendment-proposal").u64(p["base_version"]).raw32(p["base_seal_digest"])
    e.bytes_(layer).str_(p["justification"]).raw32(p["proposer"]).u64(p["created_at_ms"])
    signing = bytes(e.b)
    check("proposal signing bytes", signing.hex(), p["signing_bytes"])
    pid = sha3(signing)
    check("proposal id", pid, p["proposal_id"])
    check("signed proposal", (signing + bytes.fromhex(p["signature"])).hex(), p["signed_proposal"])
    authorized = p["proposer"] == g["authority_key"] or any(
        v["identity_key"] == p["proposer"] for v in g["validators"]
    )
    check("proposer is the founding authority or a validator", authorized, True)
    if not ed25519_ok(p["proposer"], p["signature"], signing):
        print("MISMATCH proposal signature does not verify")
        sys.exit(1)
    print("ok  proposal signature (Ed25519, proposer key)")
    if ed25519_ok(p["proposer"], p["signature"], signing + b"\x00"):
        print("MISMATCH proposal signature verifies over other bytes")
        sys.exit(1)

    keys = {v["id"]: v["identity_key"] for v in g["validators"]}
    t = g["threshold"]
    n = len(g["validators"])
    approvers, against = [], 0
    for v in vec["votes"]:
        voter = v["voter"]
        reasons = v["reasons"]
        if v["verdict"] == 2:
            assert 1 <= len(reasons) <= 32, reasons
            check(f"vote {voter} reasons sorted and unique", sorted(set(reasons), key=str.encode), reasons)
            for r in reasons:
                assert 1 <= len(r) <= 128 and all(ch in "abcdefghijklmnopqrstuvwxyz0123456789._:-" for ch in r), r
        else:
            check(f"vote {voter} carries no reasons", reasons, [])
        e = Enc("amendment-vote").raw32(pid).u64(voter)
        e.b += bytes([v["verdict"]])
        e.u32(len(reasons))
        for r in reasons:
            e.str_(r)
        vb = bytes(e.b)
        check(f"vote {voter} signing bytes", vb.hex(), v["signing_bytes"])
        check(f"vote {voter} signed vote", (vb + bytes.fromhex(v["signature"])).hex(), v["signed_vote"])
        if not ed25519_ok(keys[voter], v["signature"], vb):
            print(f"MISMATCH vote {voter} signature does not verify under its identity key")
            sys.exit(1)
        print(f"ok  vote {voter} signature (Ed25519, identity key)")
        # Tally (16.5): approvals pass at t, the first t in ledger order.
        if len(approvers) < t and against <= n - t:
            if v["verdict"] == 1:
                approvers.append(voter)
            else:
                against += 1
    check("approvers are the first t approvals", approvers, vec["approvers"])

    s = vec["seal1"]
    check("seal 1 version is base + 1", s["version"], p["base_version"] + 1)
    check("seal 1 seals the proposed layer", s["policy_digest"], p["layer_digest"])
    check("seal 1 follows seal 0", s["prev_seal"], gvec["seal0_digest"])
    check("seal 1 keeps the epoch", s["epoch"], 0)
    e = Enc("seal").u64(s["version"]).raw32(s["policy_digest"]).raw32(s["prev_seal"])
    e.u64(s["epoch"]).u16(g["threshold"]).raw32(g["group_key"])
    validators(e, g["validators"])
    sb = bytes(e.b)
    check("seal 1 signing bytes", sb.hex(), s["signing_bytes"])
    check("seal 1 digest", sha3(sb), s["seal_digest"])
    if not ed25519_ok(g["group_key"], s["signature"], sb):
        print("MISMATCH seal 1 signature does not verify under the group key of seal 0")
        sys.exit(1)
    print("ok  seal 1 signature (Ed25519, FROST group key of seal 0)")

    # 4.1: the ledger the proposal and votes make, the head where the
    # amendment passed, and the attestations of that head for seal 1.
    prev = gvec["genesis_digest"]
    payloads = [(4, bytes.fromhex(p["signed_proposal"]))]
    payloads += [(5, bytes.fromhex(v["signed_vote"])) for v in vec["votes"]]
    check("seal 1 ledger has the proposal and every vote", len(s["ledger"]), len(payloads))
    hashes = {}
    for i, ((kind, payload), row) in enumerate(zip(payloads, s["ledger"]), start=1):
        pre = Enc("ledger-entry").u64(i)
        pre.b += bytes([kind])
        pre.bytes_(payload).raw32(prev)
        prev = sha3(bytes(pre.b))
        check(f"amendment ledger entry {i}", (row["index"], row["kind"], row["entry_hash"]), (i, kind, prev))
        hashes[i] = prev
    a = s["attested"]
    passed_at = 1 + len(vec["votes"])  # the fifth vote made the t-th approval
    check("seal 1 head is where the amendment passed", a["ledger_index"], passed_at)
    check("seal 1 head hash is that entry's", a["entry_hash"], hashes[a["ledger_index"]])
    ab = bytes(Enc("seal-attestation").raw32(s["seal_digest"]).u64(a["ledger_index"]).raw32(a["entry_hash"]).b)
    check("seal 1 attestation signing bytes", ab.hex(), s["attestation_signing_bytes"])
    f = (n - 1) // 3
    q = (n + f + 2) // 2
    ids = [x["validator"] for x in a["by"]]
    check("seal 1 attesters strictly ascending", ids, sorted(set(ids)))
    check("seal 1 attesters are members", all(i in keys for i in ids), True)
    check(f"seal 1 attested by at least q = {q} of {n}", len(ids) >= q, True)
    for x in a["by"]:
        if not ed25519_ok(keys[x["validator"]], x["signature"], ab):
            print(f"MISMATCH seal 1 attestation by {x['validator']} does not verify under its identity key")
            sys.exit(1)
        if ed25519_ok(keys[x["validator"]], x["signature"], ab[:-1] + bytes([ab[-1] ^ 1])):
            print(f"MISMATCH seal 1 attestation by {x['validator']} verifies over another head")
            sys.exit(1)
    print(f"ok  seal 1 attestations ({len(ids)} identity-key signatures over its head, q = {q})")
    j = s["signed_seal_json"]
    check("seal 1 chain-file signature", j["signature"], s["signature"])
    check("seal 1 chain-file attestations", j["attested"], a)
    check("seal 1 chain-file seal digest", j["seal"]["policy_digest"], s["policy_digest"])


class Dec:
    """Reads PROTOCOL.md section 1 fields back, refusing truncation."""

    def __init__(self, data: bytes, obj=None, version=1):
        self.b, self.p = data, 0
        if obj is not None:
            tag = f"senatus/{obj}/v{version}".encode() + b"\x00"
            if not data.startswith(tag):
                print(f"MISMATCH expected tag {tag!r}")
                sys.exit(1)
            self.p = len(tag)

    def take(self, n):
        if self.p + n > len(self.b):
            print(f"MISMATCH truncated: need {n} bytes at {self.p} of {len(self.b)}")
            sys.exit(1)
        out = self.b[self.p:self.p + n]
        self.p += n
        return out

    def u8(self):
        return self.take(1)[0]

    def u32(self):
        return struct.unpack(">I", self.take(4))[0]

    def u64(self):
        return struct.unpack(">Q", self.take(8))[0]

    def raw32(self):
        return self.take(32).hex()

    def bytes_(self):
        return self.take(self.u32())

    def str_(self):
        return self.bytes_().decode("utf-8")

    def done(self, label):
        check(f"{label}: no trailing bytes", len(self.b) - self.p, 0)

    def end(self):
        """As `done`, without a line of output per success."""
        if self.p != len(self.b):
            print(f"MISMATCH {len(self.b) - self.p} trailing bytes")
            sys.exit(1)


def raw() -> Enc:
    """Section 17.3: evidence fields carry no tag."""
    e = Enc("x")
    e.b = bytearray()
    return e


def certificates(vec, gvec, avec, registry):
    """PROTOCOL.md section 17: shutdown certificates (v2) and share attestations;
    the presentations in agent evidence are verified against `registry`, the
    example layer's (policy-layer-v1.json)."""
    g = gvec["genesis"]
    check("certificate vector chains from the genesis vector", vec["genesis_digest"], gvec["genesis_digest"])
    keys = {v["id"]: v["identity_key"] for v in g["validators"]}
    names = {1: "policy-drift", 2: "ledger-break", 3: "invalid-share", 4: "vote-equivocation",
             5: "token-modified", 6: "token-forged", 7: "token-replayed", 8: "head-equivocation",
             9: "batch-lifetime", 10: "ledger-fork"}
    seen = []
    for c in vec["certificates"]:
        kind, name, f, subj = c["breach_kind"], c["name"], c["evidence_fields"], c["subject"]
        seen.append(kind)
        check(f"{name}: breach kind name", names[kind], c["breach"])
        issuer = c["issuer"]
        check(f"{name}: issuer identity key is genesis'", c["issuer_identity_key"], keys[issuer])
        if subj["kind"] == 1:
            check(f"{name}: validator subject has no agent fields", (subj["tenant"], subj["actor"]), ("", ""))
            assert 1 <= subj["node"] <= 65535 and subj["node"] in keys, subj
        else:
            check(f"{name}: agent subject kind", subj["kind"], 2)
            check(f"{name}: agent subject has node 0", subj["node"], 0)
            for v in (subj["tenant"], subj["actor"]):
                assert 1 <= len(v.encode("utf-8")) <= 256, subj

        ev = raw()
        if kind == 1:
            check(f"{name}: subject is the issuer", subj["node"], issuer)
            assert f["location"] in (1, 2), f
            ev.b += bytes([f["location"]])
            ev.u64(f["policy_version"]).raw32(f["sealed_digest"]).raw32(f["observed_digest"])
            check(f"{name}: sealed and observed digests differ", f["sealed_digest"] != f["observed_digest"], True)
            # A node-local fact (17.5), checkable here: genesis seals this version and digest.
            check(f"{name}: sealed digest is the genesis policy digest",
                  (f["policy_version"], f["sealed_digest"]), (g["policy_version"], g["policy_digest"]))
        elif kind == 3:
            request, share = bytes.fromhex(f["request"]), bytes.fromhex(f["share"])
            check(f"{name}: request digest", sha3(request), f["request_digest"])
            att = Enc("share-attestation").raw32(f["request_digest"]).bytes_(share)
            att = bytes(att.b)
            check(f"{name}: attestation signing bytes", att.hex(), f["attestation_signing_bytes"])
            check(f"{name}: attestation signing bytes are 144 bytes", len(att), 144)
            sd = Dec(share, "frost-share")
            signer, generation, seq = sd.u64(), sd.u64(), sd.u64()
            sd.raw32()
            sd.done(f"{name}: share")
            check(f"{name}: share signer", signer, f["signer"])
            check(f"{name}: subject is the share's signer", subj["node"], signer)
            rd = Dec(request, "frost-sign-request")
            message = rd.bytes_()
            entries = [(rd.u64(), rd.u64(), rd.u64(), rd.raw32(), rd.raw32()) for _ in range(rd.u32())]
            rd.done(f"{name}: sign request")
            signers = [e[0] for e in entries]
            check(f"{name}: request signers strictly ascending", signers, sorted(set(signers)))
            check(f"{name}: request has at least the threshold of signers", len(entries) >= g["threshold"], True)
            check(f"{name}: the share used the commitment the request gives its signer",
                  [(e[1], e[2]) for e in entries if e[0] == signer], [(generation, seq)])
            check(f"{name}: request message is a token batch message of this genesis",
                  message[:55], b"senatus/token-batch/v1\x00" + bytes.fromhex(gvec["genesis_digest"]))
            if not ed25519_ok(keys[signer], f["attestation_signature"], att):
                print(f"MISMATCH {name}: attestation does not verify under the signer's identity key")
                sys.exit(1)
            print(f"ok  {name}: attestation signature (Ed25519, signer's identity key)")
            if ed25519_ok(keys[issuer], f["attestation_signature"], att) and issuer != signer:
                print(f"MISMATCH {name}: attestation verifies under the issuer's key")
                sys.exit(1)
            ev.bytes_(request).bytes_(share)
            ev.b += bytes.fromhex(f["attestation_signature"])
            check(f"{name}: attested share", bytes(ev.b).hex(), f["attested_share"])
        elif kind == 4:
            first, second = bytes.fromhex(f["first_signed_vote"]), bytes.fromhex(f["second_signed_vote"])
            check(f"{name}: votes are on the proposal of the amendment vector",
                  f["proposal_id"], avec["proposal"]["proposal_id"])
            for label, sv in (("first", first), ("second", second)):
                d = Dec(sv, "amendment-vote")
                check(f"{name}: {label} vote proposal", d.raw32(), f["proposal_id"])
                check(f"{name}: {label} vote voter", d.u64(), f["voter"])
                if not ed25519_ok(keys[f["voter"]], sv[-64:].hex(), sv[:-64]):
                    print(f"MISMATCH {name}: {label} vote does not verify under the voter's identity key")
                    sys.exit(1)
                print(f"ok  {name}: {label} vote signature (Ed25519, voter's identity key)")
            check(f"{name}: the two votes sign different bytes", first[:-64] != second[:-64], True)
            check(f"{name}: subject is the voter", subj["node"], f["voter"])
            ev.bytes_(first).bytes_(second)
        elif kind in (5, 6, 7):
            tok = bytes.fromhex(f["token"])
            t = parse_token(tok, name)
            check(f"{name}: token agent", (t["tenant"], t["actor"]), (f["tenant"], f["actor"]))
            check(f"{name}: subject is the token's agent", (subj["tenant"], subj["actor"]), (t["tenant"], t["actor"]))
            check(f"{name}: token payload digest", t["digest"], f["payload_digest"])
            check(f"{name}: token names this genesis", t["genesis_digest"], gvec["genesis_digest"])
            check(f"{name}: token epoch", t["epoch"], 0)
            genuine = token_signed_by_group(t, g["group_key"])
            ev.bytes_(tok)
            if kind == 5:
                check(f"{name}: the token is the group's (proof and signature)", genuine, True)
                pj = f["presentation"]
                check(f"{name}: the params given are the ones presented", pj["params_json"], f["params_json"])
                pb = check_presentation(f"{name}: presentation", pj, t, registry)
                # Params that are not what was decided (ASCII strings and
                # integers here, for which this json.dumps is JCS).
                jcs = json.dumps(json.loads(f["params_json"]), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
                check(f"{name}: the presented params digest to something else", sha3(jcs.encode()) != t["params_digest"], True)
                ev.str_(f["params_json"]).bytes_(pb)
            elif kind == 6:
                check(f"{name}: token inclusion proof holds",
                      merkle_verify(merkle_leaf(t["payload"]), t["leaf_index"], t["leaf_count"], t["proof"],
                                    bytes.fromhex(t["root"])), True)
                check(f"{name}: token signature does not verify under the group key (forged)", genuine, False)
                pb = check_presentation(f"{name}: presentation", f["presentation"], t, registry)
                ev.bytes_(pb)
            else:
                check(f"{name}: first redemption within the issuer's ledger", 1 <= f["first_index"] <= c["head_index"], True)
                # The token as redeemed at first_index: the same payload
                # (one decision, one nonce), the same bytes or a reissue
                # under another signature.
                first_tok = bytes.fromhex(f["first_token"])
                t1 = parse_token(first_tok, f"{name}: first token")
                check(f"{name}: the first token has the token's payload", t1["payload"].hex(), t["payload"].hex())
                check(f"{name}: the first token is the group's (proof and signature)",
                      token_signed_by_group(t1, g["group_key"]), True)
                first = check_presentation(f"{name}: first presentation (of first_token)", f["first_presentation"], t1, registry)
                second = check_presentation(f"{name}: second presentation (of token)", f["second_presentation"], t, registry)
                check(f"{name}: two distinct presentations (one sent twice is a retry)", first != second, True)
                check(f"{name}: the token is the group's (proof and signature)", genuine, True)
                if first_tok != tok:
                    print(f"ok  {name}: a reissue (the same payload under another signature); "
                          "each presentation names its own token")
                ev.u64(f["first_index"]).bytes_(first_tok).bytes_(first).bytes_(second)
        elif kind in (9, 10):
            leader = f["leader"]
            check(f"{name}: subject is the attesting leader", subj["node"], leader)
            att = Enc("batch-attestation").u64(leader).u64(f["ledger_index"]).raw32(f["entry_hash"])
            att.u64(f["issued_at_ms"]).u64(f["expires_at_ms"])
            att = bytes(att.b)
            check(f"{name}: attestation signing bytes", att.hex(), f["attestation_signing_bytes"])
            if kind == 9:
                check(f"{name}: lifetime above the 3,600,000 ms any constitution allows",
                      f["expires_at_ms"] - f["issued_at_ms"] > 3_600_000, True)
            else:
                check(f"{name}: forked index within the issuer's ledger",
                      1 <= f["ledger_index"] <= c["head_index"], True)
            if not ed25519_ok(keys[leader], f["attestation_signature"], att):
                print(f"MISMATCH {name}: attestation does not verify under the leader's identity key")
                sys.exit(1)
            print(f"ok  {name}: attestation signature (Ed25519, leader's identity key)")
            ev.u64(leader).u64(f["ledger_index"]).raw32(f["entry_hash"])
            ev.u64(f["issued_at_ms"]).u64(f["expires_at_ms"])
            ev.b += bytes.fromhex(f["attestation_signature"])
        else:
            print(f"MISMATCH {name}: no rebuild rule for breach kind {kind} in this script")
            sys.exit(1)
        evidence = bytes(ev.b)
        check(f"{name}: evidence", evidence.hex(), c["evidence"])
        assert len(evidence) <= 65536

        e = Enc("shutdown-certificate", 2)
        e.b += bytes([subj["kind"]])
        e.u64(subj["node"]).str_(subj["tenant"]).str_(subj["actor"])
        e.b += bytes([kind])
        e.bytes_(evidence).u64(c["head_index"]).raw32(c["head_hash"]).u64(issuer).u64(c["issued_at_ms"])
        sb = bytes(e.b)
        check(f"{name}: certificate signing bytes", sb.hex(), c["signing_bytes"])
        check(f"{name}: certificate id", sha3(sb), c["certificate_id"])
        check(f"{name}: certificate", (sb + bytes.fromhex(c["signature"])).hex(), c["certificate"])
        if not ed25519_ok(keys[issuer], c["signature"], sb):
            print(f"MISMATCH {name}: certificate does not verify under the issuer's identity key")
            sys.exit(1)
        print(f"ok  {name}: certificate signature (Ed25519, issuer's identity key)")
        if ed25519_ok(keys[issuer], c["signature"], sb + b"\x00"):
            print(f"MISMATCH {name}: certificate signature verifies over other bytes")
            sys.exit(1)
    check("certificate vector kinds", seen, [1, 4, 3, 5, 6, 7, 9, 10])


def der(tag: int, content: bytes) -> bytes:
    """One DER TLV, definite length in the shortest form (X.690 8.1.3)."""
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    length = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def oid_content(dotted: str) -> bytes:
    """Content octets of an OBJECT IDENTIFIER (X.690 8.19), arcs of any size."""
    arcs = [int(a) for a in dotted.split(".")]
    out = bytearray()
    for arc in [arcs[0] * 40 + arcs[1]] + arcs[2:]:
        groups = [arc & 0x7F]
        arc >>= 7
        while arc:
            groups.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(groups))
    return bytes(out)


def der_time(ms: int) -> bytes:
    """Section 18.3: whole seconds (floored), UTCTime for 1950-2049, else GeneralizedTime."""
    t = datetime.datetime.fromtimestamp(ms // 1000, tz=datetime.timezone.utc)
    rest = f"{t.month:02d}{t.day:02d}{t.hour:02d}{t.minute:02d}{t.second:02d}Z"
    if 1950 <= t.year < 2050:
        return der(0x17, f"{t.year % 100:02d}{rest}".encode())
    return der(0x18, f"{t.year:04d}{rest}".encode())


def ed25519_public_of(seed_hex: str) -> str:
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed_hex))
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def tls(vec):
    """PROTOCOL.md section 18: TLS keys endorsed by identity keys, and their certificates."""
    oid = "2.25.181298536963434240838732898204400124676"
    check("tls endorsement OID", vec["endorsement_oid"], oid)
    check("tls endorsement OID DER", der(0x06, oid_content(oid)).hex(), vec["endorsement_oid_der"])
    ed25519 = der(0x30, der(0x06, bytes([0x2B, 0x65, 0x70])))  # 1.3.101.112, no parameters
    time_tags = set()
    for c in vec["cases"]:
        name = f"tls {c['name']}"
        chain, node = c["chain_id"], c["node_id"]
        issued, expires = c["issued_at_ms"], c["expires_at_ms"]
        check(f"{name}: validity is not empty", issued < expires, True)
        identity_pub, tls_pub = c["identity_public_key"], c["tls_public_key"]
        check(f"{name}: identity key derives from its seed", ed25519_public_of(c["identity_secret_key"]), identity_pub)
        check(f"{name}: TLS key derives from its seed", ed25519_public_of(c["tls_secret_key"]), tls_pub)
        check(f"{name}: TLS key is not the identity key", tls_pub != identity_pub, True)

        signing = bytes(Enc("tls-key").str_(chain).u64(node).raw32(tls_pub).u64(issued).u64(expires).b)
        check(f"{name}: endorsement signing bytes", signing.hex(), c["endorsement_signing_bytes"])
        if not ed25519_ok(identity_pub, c["endorsement_signature"], signing):
            print(f"MISMATCH {name}: endorsement does not verify under the identity key")
            sys.exit(1)
        print(f"ok  {name}: endorsement signature (Ed25519, identity key)")
        if ed25519_ok(tls_pub, c["endorsement_signature"], signing):
            print(f"MISMATCH {name}: endorsement verifies under the TLS key")
            sys.exit(1)
        # Ed25519 is deterministic (RFC 8032): the seed signs to the same bytes.
        resigned = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(c["identity_secret_key"])).sign(signing)
        check(f"{name}: endorsement re-signed with the identity seed", resigned.hex(), c["endorsement_signature"])
        sig = bytes.fromhex(c["endorsement_signature"])
        ext_value = bytes(Enc("tls-endorsement").str_(chain).u64(node).u64(issued).u64(expires).b) + sig
        check(f"{name}: extension value", ext_value.hex(), c["extension_value"])

        # The certificate template, DER by hand (section 18.3).
        serial = bytearray(hashlib.sha3_256(bytes.fromhex(tls_pub)).digest()[:16])
        serial[0] = (serial[0] & 0x7F) | 0x40
        check(f"{name}: serial", bytes(serial).hex(), c["serial"])
        cn = der(0x30, der(0x06, bytes([0x55, 0x04, 0x03])) + der(0x0C, f"senatus validator {node}".encode()))
        dn = der(0x30, der(0x31, cn))
        not_before, not_after = der_time(issued), der_time(expires)
        check(f"{name}: notBefore", not_before[2:].decode(), c["not_before"])
        check(f"{name}: notAfter", not_after[2:].decode(), c["not_after"])
        time_tags |= {not_before[0], not_after[0]}
        spki = der(0x30, ed25519 + der(0x03, b"\x00" + bytes.fromhex(tls_pub)))
        extension = der(0x30, der(0x06, oid_content(oid)) + der(0x04, der(0x04, ext_value)))
        tbs = der(0x30, der(0xA0, der(0x02, b"\x02")) + der(0x02, bytes(serial)) + ed25519 + dn
                  + der(0x30, not_before + not_after) + dn + spki + der(0xA3, der(0x30, extension)))
        check(f"{name}: TBSCertificate", tbs.hex(), c["tbs_certificate"])
        tls_key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(c["tls_secret_key"]))
        cert_sig = tls_key.sign(tbs)
        check(f"{name}: certificate signature re-signed with the TLS seed", cert_sig.hex(), c["certificate_signature"])
        if not ed25519_ok(tls_pub, c["certificate_signature"], tbs):
            print(f"MISMATCH {name}: certificate self-signature does not verify under the TLS key")
            sys.exit(1)
        print(f"ok  {name}: certificate self-signature (Ed25519, TLS key)")
        cert = der(0x30, tbs + ed25519 + der(0x03, b"\x00" + cert_sig))
        check(f"{name}: certificate DER", cert.hex(), c["certificate_der"])
        check(f"{name}: certificate at most 16 KiB", len(cert) <= 16 * 1024, True)
        b64 = base64.b64encode(cert).decode()
        pem = "-----BEGIN CERTIFICATE-----\n"
        pem += "".join(b64[i:i + 64] + "\n" for i in range(0, len(b64), 64))
        pem += "-----END CERTIFICATE-----\n"
        check(f"{name}: certificate PEM", pem, c["certificate_pem"])

        # A stock X.509 parser reads the same certificate (cryptography's).
        x = x509.load_der_x509_certificate(cert)
        ext = x.extensions.get_extension_for_oid(x509.ObjectIdentifier(oid))
        check(f"{name}: stock parser: version, serial, key",
              (x.version, x.serial_number, x.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()),
              (x509.Version.v3, int.from_bytes(serial, "big"), tls_pub))
        check(f"{name}: stock parser: one extension, non-critical, carrying the endorsement",
              (len(x.extensions), ext.critical, ext.value.value), (1, False, der(0x04, ext_value)))
        check(f"{name}: stock parser: validity in whole seconds",
              (int(x.not_valid_before_utc.timestamp()), int(x.not_valid_after_utc.timestamp())),
              (issued // 1000, expires // 1000))
    check("tls vector covers UTCTime and GeneralizedTime", sorted(time_tags), [0x17, 0x18])


def state(vec, gvec, rvec, tvec, pres):
    """PROTOCOL.md 19.1: the state digest after each applied entry; its
    redemption (15.2, v2) rebuilt from the token and presentation vectors."""
    gd = gvec["genesis_digest"]
    check("state vector chains from the genesis vector", vec["genesis_digest"], gd)
    zero = "00" * 32

    def state_digest(index, head_hash, nonces, idems):
        e = Enc("state").u64(index).raw32(head_hash).raw32(zero)
        e.u64(nonces[0]).raw32(nonces[1]).u64(idems[0]).raw32(idems[1])
        return sha3(bytes(e.b))

    nonces, idems = (0, zero), (0, zero)
    check("state digest before entry 1", state_digest(0, gd, nonces, idems), vec["empty_state_digest"])
    prev = gd
    by_key = {(r["agent"]["key"], r["tenant"], r["actor"], r["idempotency_key"]): r for r in rvec["requests"]}
    for i, e in enumerate(vec["entries"], start=1):
        check(f"state entry {i} index", e["index"], i)
        payload = bytes.fromhex(e["payload"])
        pre = Enc("ledger-entry").u64(i)
        pre.b += bytes([e["kind"]])
        pre.bytes_(payload).raw32(prev)
        h = sha3(bytes(pre.b))
        check(f"state entry {i} hash", h, e["hash"])
        if e["kind"] == 3:
            # redemption = tag bytes token bytes presentation fixed32 broker_key
            #              u64 broker_signed_at_ms fixed64 broker_signature
            r = e["redemption"]
            check(f"state entry {i} redemption token is the token vector's leaf 0", r["token"], tvec["leaves"][0]["token_wire"])
            check(f"state entry {i} redemption presentation is the presentation vector's", r["presentation"], pres.hex())
            tok, pb = bytes.fromhex(r["token"]), bytes.fromhex(r["presentation"])
            t = parse_token(tok, f"state entry {i} redemption")
            check(f"state entry {i} the presentation presents the token (SHA3-256 of its wire bytes)",
                  Dec(pb, "presentation").raw32(), t["wire_digest"])
            b = r["broker"]
            check(f"state entry {i} broker key is its seed's", ed25519_public_of(b["secret_seed"]), b["key"])
            cb = call_signing_bytes(gd, b["method"], pb, b["signed_at_ms"])
            check(f"state entry {i} broker call signing bytes (Redeem, body = presentation)", (b["method"], cb.hex()), ("Redeem", b["signing_bytes"]))
            check(f"state entry {i} broker call signature verifies", ed25519_ok(b["key"], b["signature"], cb), True)
            rb = Enc("redemption", 2).bytes_(tok).bytes_(pb).raw32(b["key"]).u64(b["signed_at_ms"])
            rb.b += bytes.fromhex(b["signature"])
            check(f"state entry {i} redemption payload", bytes(rb.b).hex(), e["payload"])
            d = Dec(payload, "redemption", 2)
            d.bytes_(), d.bytes_(), d.raw32(), d.u64(), d.take(64)
            d.done(f"state entry {i} redemption")
            check(f"state entry {i} redeems its token's nonce", e["redeemed"]["nonce"], t["nonce"])
            check(f"state entry {i} redemption index", e["redeemed"]["index"], i)
        else:
            check(f"state entry {i} carries no redemption", e["redemption"], None)
        if e["redeemed"] is not None:
            st = Enc("state-nonce").raw32(nonces[1]).bytes_(bytes.fromhex(e["redeemed"]["nonce"])).u64(e["redeemed"]["index"])
            nonces = (nonces[0] + 1, sha3(bytes(st.b)))
        if e["kind"] == 2:
            check(f"state entry {i} is the request vector's batch", e["payload"], rvec["batch"]["batch_bytes"])
        for r in e["idempotency"]:
            ik = Enc("idempotency", 2).raw32(r["agent_key"]).str_(r["tenant"]).str_(r["actor"]).str_(r["idempotency_key"])
            key = sha3(bytes(ik.b))
            check(f"state entry {i} idempotency key of {r['idempotency_key']}", key, r["key"])
            rq = by_key[(r["agent_key"], r["tenant"], r["actor"], r["idempotency_key"])]
            check(f"state entry {i} request digest of {r['idempotency_key']}", r["request_digest"], rq["request_digest"])
            check(f"state entry {i} idempotency index", r["ledger_index"], i)
            st = Enc("state-idempotency").raw32(idems[1]).bytes_(bytes.fromhex(key)).u64(i)
            st.u32(r["position"]).raw32(r["request_digest"])
            idems = (idems[0] + 1, sha3(bytes(st.b)))
        check(f"state entry {i} nonce chain", [nonces[0], nonces[1]], [e["nonce_chain"]["count"], e["nonce_chain"]["digest"]])
        check(f"state entry {i} idempotency chain", [idems[0], idems[1]], [e["idempotency_chain"]["count"], e["idempotency_chain"]["digest"]])
        check(f"state entry {i} state digest", state_digest(i, h, nonces, idems), e["state_digest"])
        prev = h


def layer_dir_digest(d: Path):
    """PROTOCOL.md 2: the digest of a layer directory's exact files."""
    files = {}
    for p in sorted(d.rglob("*")):
        if p.is_file():
            files[p.relative_to(d).as_posix()] = p.read_bytes()
    return sha3(policy_layer_bytes(files)), files


def parse_presentation(pb: bytes, label):
    """PROTOCOL.md 10.3: a presentation's bytes read back strictly."""
    if len(pb) > 452:
        sys.exit(f"FAIL {label}: presentation over 452 bytes")
    d = Dec(pb, "presentation")
    pr = {"token_digest": d.raw32(), "broker": d.bytes_().decode(), "params_hash": d.raw32(),
          "presented_at_ms": d.u64(), "key": d.raw32(), "signature": d.take(64).hex()}
    d.end()
    return pr


def presentation_is_agents(pr, t, gd, registry):
    """PROTOCOL.md 10.3 rules 2, 5 and 7: the presentation presents token `t`
    (its wire bytes), its key is the registered agent of the token's tenant
    and actor, and its signature verifies. Returns the agent's name, or why not."""
    if pr["token_digest"] != t["wire_digest"]:
        return None, "it presents another token"
    who = registry.get(pr["key"])
    if who is None or who["role"] != "agent" or who.get("tenant") != t["tenant"] or t["actor"] not in who.get("actors", []):
        return None, f"its key is not the registered agent of {t['tenant']}/{t['actor']}"
    sb = presentation_signing_bytes(gd, pr["token_digest"], pr["broker"], pr["params_hash"], pr["presented_at_ms"])
    if not ed25519_ok(pr["key"], pr["signature"], sb):
        return None, "bad signature"
    return who["name"], None


def audit_export(args):
    """Who asked, and who handed which token to whom: a ledger export
    verified from genesis; each decision's agent signature, each
    redemption's agent presentation and broker signature, and each
    certificate (its issuer's signature; for an agent, its own
    presentations) against the sealed registry of its layer."""


    def opt(name, many=False):
        vals = [args[i + 1] for i, a in enumerate(args[:-1]) if a == name]
        if not many and len(vals) > 1:
            sys.exit(f"FAIL {name} given twice")
        return vals if many else (vals[0] if vals else None)

    export, genesis_path = opt("--export"), opt("--genesis")
    if not export or not genesis_path or not opt("--policy", True):
        sys.exit("usage: verify-vectors.py --export FILE --genesis GENESIS_JSON [--seals SEALS_JSON] --policy DIR ...")
    g = json.loads(Path(genesis_path).read_text())
    e = Enc("genesis").str_(g["chain_id"]).u64(g["created_at_ms"])
    e.raw32(g["authority_key"]).u16(g["threshold"]).raw32(g["group_key"])
    validators(e, g["validators"])
    e.raw32(g["policy_digest"]).u64(g["policy_version"]).u64(g["epoch_length_decisions"])
    gd = sha3(bytes(e.b))
    check("genesis signature (authority key)", ed25519_ok(g["authority_key"], g["signature"], bytes(e.b)), True)
    s0 = Enc("seal").u64(g["policy_version"]).raw32(g["policy_digest"]).raw32(gd)
    s0.u64(0).u16(g["threshold"]).raw32(g["group_key"])
    validators(s0, g["validators"])
    seal_policy = {sha3(bytes(s0.b)): g["policy_digest"]}
    epoch_key = {0: g["group_key"]}
    members = {v["id"]: v["identity_key"] for v in g["validators"]}
    # Later seals: each chains to the one before and is signed (FROST, a
    # plain Ed25519 signature) under the group key of the one before.
    prev, group = sha3(bytes(s0.b)), g["group_key"]
    for sj in json.loads(Path(opt("--seals")).read_text()) if opt("--seals") else []:
        sl = sj["seal"]
        if sl["prev_seal"] == gd:
            # Seal 0 (derived from genesis, unsigned): it must be the same.
            s0j = Enc("seal").u64(sl["version"]).raw32(sl["policy_digest"]).raw32(sl["prev_seal"])
            s0j.u64(sl["epoch"]).u16(sl["threshold"]).raw32(sl["group_key"])
            validators(s0j, sl["membership"])
            check("seal 0 of the chain file is genesis's", sha3(bytes(s0j.b)), sha3(bytes(s0.b)))
            continue
        check(f"seal of policy version {sl['version']} follows the one before", sl["prev_seal"], prev)
        se = Enc("seal").u64(sl["version"]).raw32(sl["policy_digest"]).raw32(sl["prev_seal"])
        se.u64(sl["epoch"]).u16(sl["threshold"]).raw32(sl["group_key"])
        validators(se, sl["membership"])
        check(f"seal of policy version {sl['version']} signature (group key)", ed25519_ok(group, sj["signature"], bytes(se.b)), True)
        prev, group = sha3(bytes(se.b)), sl["group_key"]
        seal_policy[prev] = sl["policy_digest"]
        epoch_key.setdefault(sl["epoch"], sl["group_key"])
        members.update({v["id"]: v["identity_key"] for v in sl["membership"]})
    registries = {}
    for d in opt("--policy", True):
        digest, files = layer_dir_digest(Path(d))
        ids = tomllib.loads(files.get("identities.toml", b"").decode()).get("identity", [])
        registries[digest] = {i["key"]: i for i in ids}
        print(f"ok  layer {d}: digest {digest}, {len(ids)} identities")
    lines = Path(export).read_text().splitlines()
    header = json.loads(lines[0])
    check("export format", header["format"], "senatus.ledger-export.v1")
    check("export is of this genesis", header["genesis_digest"], gd)
    prev_hash, asked, unproven = gd, 0, 0
    handed, certified = 0, 0

    def registry_of(t, index):
        policy = seal_policy.get(t["seal_digest"])
        if policy is None:
            sys.exit(f"FAIL ledger index {index}: a token of seal {t['seal_digest']}, not in the seal chain (give --seals)")
        if policy not in registries:
            sys.exit(f"FAIL ledger index {index}: a token decided under layer {policy}; give its directory with --policy")
        return registries[policy]

    def genuine(t):
        return t["genesis_digest"] == gd and t["epoch"] in epoch_key and token_signed_by_group(t, epoch_key[t["epoch"]])
    for n, line in enumerate(lines[1:], start=1):
        ln = json.loads(line)
        enc = bytes.fromhex(ln["entry"])
        body, h = enc[:-32], enc[-32:].hex()
        if sha3(body) != h or h != ln["hash"] or ln["index"] != n:
            sys.exit(f"FAIL ledger index {n}: hash or index does not verify")
        d = Dec(body, "ledger-entry")
        index, kind = d.u64(), d.take(1)[0]
        payload, link = d.bytes_(), d.take(32).hex()
        d.end()
        if link != prev_hash:
            sys.exit(f"FAIL ledger index {n}: prev_hash does not link")
        prev_hash = h
        if kind == 3:
            # 15.2: redemption v2 = token, the agent's presentation, the
            # broker's signed Redeem call (body = the presentation bytes).
            r = Dec(payload, "redemption", 2)
            tok, pb, bkey, bat, bsig = r.bytes_(), r.bytes_(), r.raw32(), r.u64(), r.take(64).hex()
            r.end()
            t = parse_token(tok, f"ledger index {index}")
            pr = parse_presentation(pb, f"ledger index {index}")
            reg = registry_of(t, index)
            agent, why = presentation_is_agents(pr, t, gd, reg)
            broker = reg.get(bkey)
            bad = why or (None if genuine(t) else "the token is not signed by the group")
            if not bad and (broker is None or broker["role"] != "broker"):
                bad = "the redeeming key is not a registered broker"
            if not bad and broker["name"] != pr["broker"]:
                bad = f"broker {broker['name']} redeemed a token handed to {pr['broker']}"
            if not bad and t["surface"] not in broker.get("surfaces", []):
                bad = f"broker {broker['name']} does not guard surface {t['surface']}"
            if not bad and not ed25519_ok(bkey, bsig, call_signing_bytes(gd, "Redeem", pb, bat)):
                bad = "the broker's signature does not verify"
            if bad:
                sys.exit(f"FAIL ledger index {index}: redemption of nonce {t['nonce']}: {bad}")
            handed += 1
            print(f"ok  index {index}: nonce {t['nonce']} of {t['tenant']}/{t['actor']} handed by {agent} to "
                  f"{broker['name']} (both signatures verify)")
            continue
        if kind == 8:
            certified += audit_certificate(payload, index, gd, members, registries, seal_policy, genuine)
            continue
        if kind != 2:
            continue
        b = Dec(payload, "decision-batch", 2)
        issued = b.u64()
        b.u64()
        b.u64()
        seal_digest = b.take(32).hex()
        b.u64()
        if seal_digest not in seal_policy:
            sys.exit(f"FAIL ledger index {index}: decided under seal {seal_digest}, not in the seal chain (give --seals)")
        policy = seal_policy[seal_digest]
        if policy not in registries:
            sys.exit(f"FAIL ledger index {index}: decided under layer {policy}; give its directory with --policy")
        for pos in range(b.u32()):
            sr = Dec(b.bytes_(), "signed-request")
            req, signed_at, key, sig = sr.bytes_(), sr.u64(), sr.take(32).hex(), sr.take(64).hex()
            sr.end()
            rd = Dec(req, "request")
            _surface, _action = rd.bytes_(), rd.bytes_()
            actor, tenant = rd.bytes_().decode(), rd.bytes_().decode()
            who = registries[policy].get(key)
            signed = ed25519_ok(key, sig, request_signing_bytes(gd, sha3(req), signed_at))
            if who is None or not signed or who["role"] != "agent" or who.get("tenant") != tenant or actor not in who.get("actors", []):
                # The validators decided it DENY (senatus.identity.*); say so.
                why = "unknown key" if who is None else ("bad signature" if not signed else "not that agent's actor or tenant")
                print(f"FAIL index {index} position {pos}: {tenant}/{actor} NOT asked by a registered agent ({why})")
                unproven += 1
                continue
            asked += 1
            print(f"ok  index {index} position {pos}: {tenant}/{actor} asked by {who['name']} (key {key[:16]}...), "
                  f"signed {issued - signed_at} ms before the batch")
        b.end()
    check("export head is the header's", [len(lines) - 1, prev_hash], [header["head_index"], header["head_hash"]])
    print(f"who handed what to whom: {handed} redemptions verified to their agents' and brokers' keys; "
          f"{certified} certificates about agents verified to the agents' own presentations")
    if unproven:
        # The validators decided these DENY (senatus.identity.*), but a
        # request no agent signed on the ledger means a leader wrote it.
        sys.exit(f"FAIL {unproven} decisions on the ledger were not asked by a registered agent")
    print(f"who asked: {asked} decisions verified to their agents' keys over {len(lines) - 1} entries")


def audit_certificate(payload, index, gd, members, registries, seal_policy, genuine):
    """PROTOCOL.md 17: a Certificate entry's issuer signature and, for one
    about an agent (kinds 5, 6, 7), the agent's own presentations. Returns 1
    for a verified certificate about an agent, else 0."""
    d = Dec(payload, "shutdown-certificate", 2)
    subject_kind, _node = d.u8(), d.u64()
    tenant, actor = d.bytes_().decode(), d.bytes_().decode()
    kind, evidence = d.u8(), d.bytes_()
    d.u64(), d.raw32()
    issuer = d.u64()
    d.u64()
    sig = d.take(64).hex()
    d.end()
    signing = payload[:-64]
    if issuer not in members or not ed25519_ok(members[issuer], sig, signing):
        sys.exit(f"FAIL ledger index {index}: certificate not signed by validator {issuer}")
    if kind not in (5, 6, 7):
        print(f"ok  index {index}: certificate kind {kind} signed by validator {issuer}")
        return 0
    check(f"ledger index {index}: an agent certificate names an agent", subject_kind, 2)
    ev = Dec(evidence)
    tok = ev.bytes_()
    t = parse_token(tok, f"ledger index {index} evidence")
    check(f"ledger index {index}: the subject is the token's agent", (tenant, actor), (t["tenant"], t["actor"]))
    policy = seal_policy.get(t["seal_digest"])
    if policy not in registries:
        sys.exit(f"FAIL ledger index {index}: give the layer of seal {t['seal_digest']} with --policy")
    reg = registries[policy]

    def agents(pb, tt, what):
        name, why = presentation_is_agents(parse_presentation(pb, what), tt, gd, reg)
        if why:
            sys.exit(f"FAIL ledger index {index}: {what} is not the agent's: {why}")
        return name

    if kind == 5:
        params = ev.bytes_()
        name = agents(ev.bytes_(), t, "presentation")
        ev.end()
        if not genuine(t):
            sys.exit(f"FAIL ledger index {index}: token-modified evidence whose token the group did not sign")
        try:
            v = json.loads(params)
            digest = sha3(json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode())
        except ValueError:
            digest = None
        if digest == t["params_digest"]:
            sys.exit(f"FAIL ledger index {index}: the presented params are the token's: no breach")
        what = "presented the token with other params"
    elif kind == 6:
        name = agents(ev.bytes_(), t, "presentation")
        ev.end()
        if genuine(t):
            sys.exit(f"FAIL ledger index {index}: token-forged evidence whose token the group signed")
        what = "presented a token the group never signed"
    else:
        first_index, first_tok = ev.u64(), ev.bytes_()
        t1 = parse_token(first_tok, f"ledger index {index} first token")
        p1, p2 = ev.bytes_(), ev.bytes_()
        ev.end()
        check(f"ledger index {index}: the first token is the same decision", t1["payload"], t["payload"])
        if not (genuine(t) and genuine(t1)):
            sys.exit(f"FAIL ledger index {index}: token-replayed evidence whose tokens the group did not sign")
        name = agents(p1, t1, "first presentation")
        agents(p2, t, "second presentation")
        if p1 == p2:
            sys.exit(f"FAIL ledger index {index}: one presentation twice is a retry, not a replay")
        what = f"presented nonce {t['nonce']} twice (first redeemed at ledger index {first_index})"
    print(f"ok  index {index}: certificate by validator {issuer}: {name} ({tenant}/{actor}) {what}, "
          f"on its own signature")
    return 1


def main():
    if "--export" in sys.argv:
        audit_export(sys.argv[1:])
        return
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent.parent / "docs/vectors"

    def load(name):
        # Every vector file is required: a missing one is a failure, not a
        # check silently skipped.
        p = root / name
        if not p.exists():
            print(f"FAIL missing vector file {p}")
            sys.exit(1)
        return json.loads(p.read_text())

    ed25519_rules(load("ed25519-v1.json"))
    pvec = load("policy-layer-v1.json")
    policy_digest = policy_layer(pvec)


    # PROTOCOL.md 2.1: the registry of the layer genesis seals.
    ids = tomllib.loads(pvec["files"].get("identities.toml", "")).get("identity", [])
    registry = {i["key"]: i for i in ids}
    check("registry keys are unique", len(registry), len(ids))
    gvec = load("genesis-v1.json")
    genesis(gvec, policy_digest)
    ledger(load("ledger-v1.json"), gvec["genesis_digest"])
    tvec = load("token-v1.json")
    token(tvec, gvec)
    pres = presentation(load("presentation-v1.json"), gvec, tvec)
    rvec = load("request-v1.json")
    requests(rvec, gvec, policy_digest, registry)
    state(load("state-v1.json"), gvec, rvec, tvec, pres)
    avec = load("amendment-v1.json")
    amendment(avec, gvec)
    certificates(load("certificate-v2.json"), gvec, avec, registry)
    tls(load("tls-v1.json"))
    print("all vectors verified independently")


if __name__ == "__main__":
    main()
