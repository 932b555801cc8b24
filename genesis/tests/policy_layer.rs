//! The sealed policy layer: loading, validation, canonical encoding, pinned
//! digests, every rejection path, and the behaviour of the bundled example.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cedar_policy::{Authorizer, Context, Decision, EntityUid, PolicyId, Request, Response};
use senatus_genesis::policy::{
    Constitution, LAYER_BYTES_HARD_MAX, PolicyError, PolicyLayer, clause_digest,
};
use senatus_genesis::{Digest, sha3};

type Files = BTreeMap<String, Vec<u8>>;

/// Pinned digest of `genesis/example-policy/`. Changing any byte of the
/// example changes it; update it deliberately, together with the report of
/// why the example changed.
const EXAMPLE_DIGEST_HEX: &str = "e1cf26548444443e75f053a78590fd8b9222b4a2582d675d3b3363c21532cf37";

const TINY_CONSTITUTION: &str = "version = 1
[amendment]
threshold = 3
validators = 5
threshold_floor = 3
deadline_entries = 1000
[epoch]
length_decisions = 10000
[uncertainty]
alpha_permille = 700
[detectors]
pii = true
secrets = true
external_endpoints_max = 3
[limits]
policy_bytes_max = 4096
layer_bytes_max = 65536
policies_max = 16
params_bytes_max = 4096
";
const TINY_SCHEMA: &str = "entity A;\naction \"x\" appliesTo { principal: A, resource: A };\n";
const TINY_ENTITIES: &str = "[]\n";
const TINY_POLICY: &str = "permit (principal, action == Action::\"x\", resource);\n";

/// The tiny layer's canonical bytes, written out field by field so an outside
/// implementation can check its encoder against them.
const TINY_CANONICAL_HEX: &[&str] = &[
    // "senatus/policy-layer/v1\0"
    "73656e617475732f706f6c6963792d6c617965722f763100",
    // 4 files
    "00000004",
    // path "constitution.toml" (17 bytes)
    "00000011",
    "636f6e737469747574696f6e2e746f6d6c",
    // content (329 bytes)
    "00000149",
    "76657273696f6e203d20310a5b616d656e646d656e745d0a7468726573686f6c",
    "64203d20330a76616c696461746f7273203d20350a7468726573686f6c645f66",
    "6c6f6f72203d20330a646561646c696e655f656e7472696573203d2031303030",
    "0a5b65706f63685d0a6c656e6774685f6465636973696f6e73203d2031303030",
    "300a5b756e6365727461696e74795d0a616c7068615f7065726d696c6c65203d",
    "203730300a5b6465746563746f72735d0a706969203d20747275650a73656372",
    "657473203d20747275650a65787465726e616c5f656e64706f696e74735f6d61",
    "78203d20330a5b6c696d6974735d0a706f6c6963795f62797465735f6d617820",
    "3d20343039360a6c617965725f62797465735f6d6178203d2036353533360a70",
    "6f6c69636965735f6d6178203d2031360a706172616d735f62797465735f6d61",
    "78203d20343039360a",
    // path "entities.json" (13 bytes)
    "0000000d",
    "656e7469746965732e6a736f6e",
    // content (3 bytes)
    "00000003",
    "5b5d0a",
    // path "policies/allow-x.cedar" (22 bytes)
    "00000016",
    "706f6c69636965732f616c6c6f772d782e6365646172",
    // content (53 bytes)
    "00000035",
    "7065726d697420287072696e636970616c2c20616374696f6e203d3d20416374",
    "696f6e3a3a2278222c207265736f75726365293b0a",
    // path "schema.cedarschema" (18 bytes)
    "00000012",
    "736368656d612e6365646172736368656d61",
    // content (62 bytes)
    "0000003e",
    "656e7469747920413b0a616374696f6e20227822206170706c696573546f207b",
    "207072696e636970616c3a20412c207265736f757263653a2041207d3b0a",
];
const TINY_DIGEST_HEX: &str = "e3f06ad5928404a569478a11ef740cc1fd6563e8c1feba5417d12bb3a0ad3e87";

fn tiny_files() -> Files {
    [
        ("constitution.toml", TINY_CONSTITUTION),
        ("schema.cedarschema", TINY_SCHEMA),
        ("entities.json", TINY_ENTITIES),
        ("policies/allow-x.cedar", TINY_POLICY),
    ]
    .into_iter()
    .map(|(p, c)| (p.to_string(), c.as_bytes().to_vec()))
    .collect()
}

fn example_files() -> Files {
    PolicyLayer::example().files().clone()
}

fn example_dir() -> PathBuf {
    Path::new(
        // At run time: cargo sets it to this checkout, while a binary reused
        // from a shared target dir may have another checkout compiled in.
        &std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("example-policy")
}

fn text(files: &Files, path: &str) -> String {
    String::from_utf8(files[path].clone()).expect("fixture is UTF-8")
}

fn set(files: &mut Files, path: &str, content: impl Into<Vec<u8>>) {
    files.insert(path.to_string(), content.into());
}

fn load_err(files: Files) -> PolicyError {
    match PolicyLayer::from_files(files) {
        Ok(layer) => panic!("layer unexpectedly accepted: {layer}"),
        Err(e) => e,
    }
}

fn decode_err(bytes: &[u8]) -> PolicyError {
    match PolicyLayer::from_canonical_bytes(bytes) {
        Ok(layer) => panic!("canonical bytes unexpectedly accepted: {layer}"),
        Err(e) => e,
    }
}

fn with_constitution(edit: impl FnOnce(String) -> String) -> Files {
    let mut files = example_files();
    let c = edit(text(&files, "constitution.toml"));
    set(&mut files, "constitution.toml", c);
    files
}

// ---------------------------------------------------------------- positive

#[test]
fn example_loads_with_its_clauses_and_immutables() {
    let layer = PolicyLayer::example();
    let ids: Vec<&str> = layer.clause_ids().collect();
    assert_eq!(
        ids,
        [
            "data.export-internal",
            "data.no-pii-external",
            "infra.mutate-sre-window",
            "payments.blocklist",
            "payments.transfer-within-limit",
            "safety.no-secrets",
        ]
    );
    assert_eq!(layer.policies().num_of_policies(), 6);
    for id in &ids {
        assert!(
            layer.policies().policy(&PolicyId::new(id)).is_some(),
            "PolicyId of {id} is its clause id"
        );
    }
    let immutable: Vec<&str> = layer
        .constitution()
        .immutable_clauses
        .iter()
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(
        immutable,
        [
            "payments.blocklist",
            "data.no-pii-external",
            "safety.no-secrets"
        ]
    );
    assert_eq!(layer.constitution().version, 1);
    assert_eq!(layer.constitution().amendment.threshold, 3);
    assert_eq!(layer.constitution().amendment.validators, 5);
}

#[test]
fn bundled_example_equals_the_directory_on_disk() {
    // Catches a file added to example-policy/ but not to `example()`.
    let from_disk = PolicyLayer::load_dir(&example_dir()).expect("example dir loads");
    let bundled = PolicyLayer::example();
    assert_eq!(from_disk.files(), bundled.files());
    assert_eq!(from_disk.digest(), bundled.digest());
}

#[test]
fn example_immutable_digests_are_correct() {
    let layer = PolicyLayer::example();
    assert!(!layer.constitution().immutable_clauses.is_empty());
    for sealed in &layer.constitution().immutable_clauses {
        let text = layer
            .clause_text(&sealed.id)
            .expect("immutable clause present");
        assert_eq!(
            clause_digest(&sealed.id, text),
            sealed.sha3,
            "{}",
            sealed.id
        );
    }
}

#[test]
fn example_digest_is_pinned() {
    let layer = PolicyLayer::example();
    assert_eq!(layer.digest().to_hex(), EXAMPLE_DIGEST_HEX);
    assert_eq!(sha3(&layer.canonical_bytes()), layer.digest());
}

#[test]
fn tiny_layer_canonical_bytes_and_digest_are_pinned() {
    let layer = PolicyLayer::from_files(tiny_files()).expect("tiny layer is valid");
    let want = hex::decode(TINY_CANONICAL_HEX.concat()).expect("hex");
    assert_eq!(hex::encode(layer.canonical_bytes()), hex::encode(&want));
    assert_eq!(layer.digest().to_hex(), TINY_DIGEST_HEX);
    assert_eq!(sha3(&want).to_hex(), TINY_DIGEST_HEX);
}

#[test]
fn clause_digest_is_pinned() {
    // SHA3-256("senatus/policy-clause/v1\0" 00000007 "allow-x" 00000035 <text>)
    let d = clause_digest("allow-x", TINY_POLICY.as_bytes());
    let mut msg = b"senatus/policy-clause/v1\0".to_vec();
    msg.extend_from_slice(&7u32.to_be_bytes());
    msg.extend_from_slice(b"allow-x");
    msg.extend_from_slice(&53u32.to_be_bytes());
    msg.extend_from_slice(TINY_POLICY.as_bytes());
    assert_eq!(d, sha3(&msg));
    assert_ne!(d, clause_digest("allow-y", TINY_POLICY.as_bytes()));
}

#[test]
fn canonical_bytes_round_trip() {
    for layer in [
        PolicyLayer::example(),
        PolicyLayer::from_files(tiny_files()).expect("tiny"),
    ] {
        let bytes = layer.canonical_bytes();
        let back = PolicyLayer::from_canonical_bytes(&bytes).expect("decodes");
        assert_eq!(back.digest(), layer.digest());
        assert_eq!(back.files(), layer.files());
        assert_eq!(back.constitution(), layer.constitution());
        assert_eq!(back.canonical_bytes(), bytes);
    }
}

#[test]
fn digest_is_deterministic_and_covers_exact_bytes() {
    let a = PolicyLayer::example();
    let b = PolicyLayer::from_files(example_files()).expect("reload");
    assert_eq!(a.digest(), b.digest());

    // Cosmetic reformatting of a mutable clause is still a valid layer, but
    // a different sealed artefact.
    let mut files = example_files();
    let path = "policies/data.export-internal.cedar";
    let reformatted = text(&files, path).replace("permit (", "permit(");
    set(&mut files, path, reformatted);
    let c = PolicyLayer::from_files(files).expect("reformatted layer is valid");
    assert_ne!(c.digest(), a.digest());
}

#[test]
fn write_dir_then_load_dir_round_trips() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("layer");
    let layer = PolicyLayer::example();
    layer.write_dir(&dir).expect("write");
    let back = PolicyLayer::load_dir(&dir).expect("load");
    assert_eq!(back.digest(), layer.digest());
    assert_eq!(back.files(), layer.files());

    // Writing over an existing layer is refused rather than mixing files.
    let err = layer.write_dir(&dir).expect_err("non-empty dir");
    assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
}

#[test]
fn constitution_validate_is_callable_alone() {
    let mut c = PolicyLayer::example().constitution().clone();
    assert!(c.validate().is_ok());
    c.amendment.threshold = 2;
    assert!(matches!(
        c.validate(),
        Err(PolicyError::ConstitutionRule { rule, .. }) if rule.contains("threshold_floor")
    ));
    let parsed = Constitution::parse(TINY_CONSTITUTION).expect("tiny constitution");
    assert!(parsed.immutable_clauses.is_empty());
}

// ------------------------------------------------------ rejections: files

#[test]
fn flipped_byte_in_policy_breaks_parsing() {
    let mut files = example_files();
    let path = "policies/payments.transfer-within-limit.cedar";
    let mut bytes = files[path].clone();
    let at = text(&files, path).find("permit (").expect("permit") + "permit ".len();
    bytes[at] ^= 0x01; // '(' becomes ')'
    set(&mut files, path, bytes);
    match load_err(files) {
        PolicyError::PolicyParse { clause, .. } => {
            assert_eq!(clause, "payments.transfer-within-limit")
        }
        e => panic!("wrong error: {e}"),
    }
}

#[test]
fn non_utf8_file_is_rejected() {
    let mut files = example_files();
    let path = "policies/data.export-internal.cedar";
    let mut bytes = files[path].clone();
    bytes[0] = 0xff;
    set(&mut files, path, bytes);
    assert!(matches!(load_err(files), PolicyError::NotUtf8(p) if p == path));
}

#[test]
fn edited_immutable_clause_reports_both_digests() {
    let mut files = example_files();
    let path = "policies/payments.blocklist.cedar";
    // A still-valid policy that quietly stops blocking anything.
    let edited = text(&files, path).replace(
        "Senatus::Blocklist::\"payments\".accounts.contains(context.params.to_account)",
        "false",
    );
    set(&mut files, path, edited.clone());
    let expected = PolicyLayer::example()
        .constitution()
        .immutable_clauses
        .iter()
        .find(|c| c.id == "payments.blocklist")
        .expect("sealed")
        .sha3;
    match load_err(files) {
        PolicyError::ImmutableClauseChanged {
            id,
            expected: e,
            found,
        } => {
            assert_eq!(id, "payments.blocklist");
            assert_eq!(e, expected);
            assert_eq!(
                found,
                clause_digest("payments.blocklist", edited.as_bytes())
            );
        }
        e => panic!("wrong error: {e}"),
    }
}

#[test]
fn removed_immutable_clause_is_rejected() {
    let mut files = example_files();
    files.remove("policies/safety.no-secrets.cedar");
    assert!(matches!(
        load_err(files),
        PolicyError::ImmutableClauseMissing { id } if id == "safety.no-secrets"
    ));
}

#[test]
fn policy_failing_schema_validation_is_rejected() {
    let mut files = example_files();
    set(
        &mut files,
        "policies/payments.bad.cedar",
        "permit (principal, action == Senatus::Action::\"payments.transfer\", resource)\n\
         when { context.params.amount <= resource.no_such_limit };\n",
    );
    match load_err(files) {
        PolicyError::SchemaValidation { clauses, message } => {
            assert_eq!(clauses, ["payments.bad"]);
            assert!(message.contains("no_such_limit"), "{message}");
        }
        e => panic!("wrong error: {e}"),
    }
}

#[test]
fn policy_for_an_unknown_action_fails_validation() {
    let mut files = example_files();
    set(
        &mut files,
        "policies/email.send.cedar",
        "permit (principal, action == Senatus::Action::\"email.send\", resource);\n",
    );
    assert!(matches!(
        load_err(files),
        PolicyError::SchemaValidation { clauses, .. } if clauses == ["email.send"]
    ));
}

#[test]
fn policy_that_can_never_apply_is_rejected() {
    let mut files = example_files();
    set(
        &mut files,
        "policies/never.cedar",
        "forbid (principal, action == Senatus::Action::\"payments.transfer\", resource)\n\
         when { false };\n",
    );
    assert!(matches!(
        load_err(files),
        PolicyError::ValidationWarnings { clauses, .. } if clauses == ["never"]
    ));
}

#[test]
fn policy_file_must_hold_exactly_one_policy() {
    let mut two = example_files();
    set(
        &mut two,
        "policies/two.cedar",
        "permit (principal, action == Senatus::Action::\"data.export\", resource);\n\
         permit (principal, action == Senatus::Action::\"infra.mutate\", resource);\n",
    );
    assert!(matches!(
        load_err(two),
        PolicyError::NotExactlyOnePolicy { clause, found: 2 } if clause == "two"
    ));

    let mut none = example_files();
    set(&mut none, "policies/empty.cedar", "// nothing here\n");
    assert!(matches!(
        load_err(none),
        PolicyError::NotExactlyOnePolicy { clause, found: 0 } if clause == "empty"
    ));
}

#[test]
fn templates_are_rejected() {
    let mut files = example_files();
    set(
        &mut files,
        "policies/tmpl.cedar",
        "permit (principal == ?principal, action == Senatus::Action::\"data.export\", resource);\n",
    );
    assert!(matches!(
        load_err(files),
        PolicyError::TemplateNotAllowed { clause } if clause == "tmpl"
    ));
}

#[test]
fn bad_clause_ids_are_rejected() {
    for id in ["Upper", ".hidden", "with space", &"a".repeat(65)] {
        let mut files = example_files();
        set(
            &mut files,
            &format!("policies/{id}.cedar"),
            "permit (principal, action == Senatus::Action::\"data.export\", resource);\n",
        );
        assert!(
            matches!(load_err(files), PolicyError::BadClauseId(ref bad) if bad == id),
            "{id}"
        );
    }
}

#[test]
fn unexpected_and_missing_files_are_rejected() {
    for path in [
        "README.md",
        "policies/notes.txt",
        "policies/sub/x.cedar",
        "extra/x.cedar",
    ] {
        let mut files = example_files();
        set(&mut files, path, "x");
        assert!(
            matches!(load_err(files), PolicyError::UnexpectedFile(ref p) if p == path),
            "{path}"
        );
    }
    for path in ["constitution.toml", "schema.cedarschema", "entities.json"] {
        let mut files = example_files();
        files.remove(path);
        assert!(
            matches!(load_err(files), PolicyError::MissingFile(ref p) if p == path),
            "{path}"
        );
    }
}

#[test]
fn load_dir_rejects_stray_directories_and_files() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("layer");
    PolicyLayer::example().write_dir(&dir).expect("write");

    std::fs::create_dir(dir.join("drafts")).expect("mkdir");
    assert!(matches!(
        PolicyLayer::load_dir(&dir),
        Err(PolicyError::UnexpectedFile(p)) if p == "drafts/"
    ));
    std::fs::remove_dir(dir.join("drafts")).expect("rmdir");

    std::fs::create_dir(dir.join("policies/nested")).expect("mkdir");
    assert!(matches!(
        PolicyLayer::load_dir(&dir),
        Err(PolicyError::UnexpectedFile(p)) if p == "policies/nested/"
    ));
    std::fs::remove_dir(dir.join("policies/nested")).expect("rmdir");

    std::fs::write(dir.join(".DS_Store"), b"x").expect("write");
    assert!(matches!(
        PolicyLayer::load_dir(&dir),
        Err(PolicyError::UnexpectedFile(p)) if p == ".DS_Store"
    ));
    std::fs::remove_file(dir.join(".DS_Store")).expect("rm");

    assert!(PolicyLayer::load_dir(&dir).is_ok());
    assert!(matches!(
        PolicyLayer::load_dir(&tmp.path().join("absent")),
        Err(PolicyError::Io { .. })
    ));
}

#[cfg(unix)]
#[test]
fn load_dir_rejects_symlinks() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("layer");
    PolicyLayer::example().write_dir(&dir).expect("write");
    let real = dir.join("policies/data.export-internal.cedar");
    let moved = tmp.path().join("outside.cedar");
    std::fs::rename(&real, &moved).expect("move");
    std::os::unix::fs::symlink(&moved, &real).expect("symlink");
    assert!(matches!(
        PolicyLayer::load_dir(&dir),
        Err(PolicyError::Symlink(p)) if p == real
    ));
}

#[test]
fn bad_schema_and_entities_are_rejected() {
    let mut files = example_files();
    set(&mut files, "schema.cedarschema", "namespace { entity");
    assert!(matches!(load_err(files), PolicyError::SchemaParse(_)));

    // A tenant without its sealed transfer limit does not conform.
    let entities =
        text(&example_files(), "entities.json").replace("\"transfer_limit\": 100000,", "");
    let mut files = example_files();
    set(&mut files, "entities.json", entities);
    assert!(matches!(
        load_err(files),
        PolicyError::EntitiesInvalid(m) if m.contains("transfer_limit")
    ));

    let mut files = example_files();
    set(&mut files, "entities.json", "{");
    assert!(matches!(load_err(files), PolicyError::EntitiesInvalid(_)));
}

#[test]
fn forbid_naming_a_missing_entity_is_rejected() {
    // Without the blocklist entity the sealed forbid would error at
    // evaluation, and Cedar skips erroring policies: fail open.
    let mut entities: serde_json::Value =
        serde_json::from_slice(&example_files()["entities.json"]).expect("json");
    let list = entities.as_array_mut().expect("array");
    list.retain(|e| e["uid"]["type"] != "Senatus::Blocklist");
    let mut files = example_files();
    set(&mut files, "entities.json", entities.to_string());
    match load_err(files) {
        PolicyError::ForbidNamesUnknownEntity { clause, entity } => {
            assert_eq!(clause, "payments.blocklist");
            assert!(entity.contains("Blocklist"), "{entity}");
        }
        e => panic!("wrong error: {e}"),
    }
}

#[test]
fn size_limits_are_enforced() {
    let mut files = example_files();
    let mut big = "// padding\n".repeat(1500).into_bytes(); // > 16384 bytes
    big.extend_from_slice(
        b"permit (principal, action == Senatus::Action::\"data.export\", resource);\n",
    );
    let big_len = big.len() as u64;
    set(&mut files, "policies/big.cedar", big);
    assert!(matches!(
        load_err(files),
        PolicyError::TooLarge { what, bytes, max: 16384 } if what == "policies/big.cedar" && bytes == big_len
    ));

    // policies_max = 16 in the tiny layer.
    let mut files = tiny_files();
    for i in 0..16 {
        set(&mut files, &format!("policies/p{i}.cedar"), TINY_POLICY);
    }
    assert!(matches!(
        load_err(files),
        PolicyError::TooManyPolicies { count: 17, max: 16 }
    ));

    // layer_bytes_max bounds the whole canonical layer.
    let mut files = tiny_files();
    let c = TINY_CONSTITUTION
        .replace("layer_bytes_max = 65536", "layer_bytes_max = 600")
        .replace("policy_bytes_max = 4096", "policy_bytes_max = 600");
    set(&mut files, "constitution.toml", c);
    set(&mut files, "policies/allow-y.cedar", TINY_POLICY);
    assert!(matches!(
        load_err(files),
        PolicyError::TooLarge { what, max: 600, .. } if what == "canonical layer"
    ));
}

// ------------------------------------- rejections: cost and stack bounds
//
// Every validator decodes a proposed layer before anyone reviewed it. Cedar's
// parser recurses without a stack guard (about 150 nested brackets abort the
// process on a 2 MiB stack), and its entity closure and strict validation
// grow quickly; these inputs must be refused before Cedar sees them.

/// The tiny layer with room for large inputs.
fn roomy_tiny_files() -> Files {
    let mut files = tiny_files();
    let c = TINY_CONSTITUTION
        .replace("layer_bytes_max = 65536", "layer_bytes_max = 4000000")
        .replace("policy_bytes_max = 4096", "policy_bytes_max = 60000");
    set(&mut files, "constitution.toml", c);
    files
}

fn tiny_policy_when(condition: &str) -> String {
    format!("permit (principal, action == Action::\"x\", resource) when {{ {condition} }};\n")
}

#[test]
fn deep_nesting_is_refused_before_cedar_parses_it() {
    let mut files = roomy_tiny_files();
    let deep = format!("{}true{}", "(".repeat(200), ")".repeat(200));
    set(
        &mut files,
        "policies/allow-x.cedar",
        tiny_policy_when(&deep),
    );
    assert!(matches!(
        load_err(files),
        PolicyError::TooComplex { path, measure, value: 33, max: 32 }
            if path == "policies/allow-x.cedar" && measure.contains("nesting")
    ));

    // At the limit (31 parentheses inside the `when` braces) it is fine.
    let mut files = roomy_tiny_files();
    let ok = format!("{}true{}", "(".repeat(31), ")".repeat(31));
    set(&mut files, "policies/allow-x.cedar", tiny_policy_when(&ok));
    if let Err(e) = PolicyLayer::from_files(files) {
        panic!("nesting at the limit refused: {e}");
    }

    // Brackets inside comments and strings do not count.
    let mut files = roomy_tiny_files();
    let text = format!(
        "// {}\npermit (principal, action == Action::\"x\", resource) when {{ principal == A::\"\\\"{}\" }};\n",
        "(".repeat(100),
        "[".repeat(100)
    );
    set(&mut files, "policies/allow-x.cedar", text);
    if let Err(e) = PolicyLayer::from_files(files) {
        panic!("brackets in comments and strings counted: {e}");
    }

    let mut files = roomy_tiny_files();
    let schema = format!(
        "entity A = {{ x: {}Long{} }};\naction \"x\" appliesTo {{ principal: A, resource: A }};\n",
        "Set<".repeat(40),
        ">".repeat(40)
    );
    set(&mut files, "schema.cedarschema", schema);
    assert!(matches!(
        load_err(files),
        PolicyError::TooComplex { path, .. } if path == "schema.cedarschema"
    ));
}

#[test]
fn long_operator_chains_and_literal_sets_are_refused() {
    let mut files = roomy_tiny_files();
    // 299 `+`, the `==` here, and the `==` and two `,` of the scope.
    let chain = format!("{} == 1", vec!["1"; 300].join(" + "));
    set(
        &mut files,
        "policies/allow-x.cedar",
        tiny_policy_when(&chain),
    );
    assert!(matches!(
        load_err(files),
        PolicyError::TooComplex {
            measure: "operator count",
            value: 303,
            max: 256,
            ..
        }
    ));

    // A 300-element set literal: typechecked per element and environment.
    let mut files = roomy_tiny_files();
    let set_literal = format!("[{}].contains(1)", vec!["1"; 300].join(", "));
    set(
        &mut files,
        "policies/allow-x.cedar",
        tiny_policy_when(&set_literal),
    );
    assert!(matches!(
        load_err(files),
        PolicyError::TooComplex {
            measure: "operator count",
            ..
        }
    ));
}

#[test]
fn oversized_schema_and_request_env_explosions_are_refused() {
    let mut files = roomy_tiny_files();
    let schema = format!("{TINY_SCHEMA}{}", "// padding\n".repeat(30_000));
    set(&mut files, "schema.cedarschema", schema);
    assert!(matches!(
        load_err(files),
        PolicyError::TooLarge { what, max: 262144, .. } if what == "schema.cedarschema"
    ));

    // 33 principal types x 33 resource types for one action.
    let types: Vec<String> = (0..33).map(|i| format!("E{i}")).collect();
    let mut schema: String = types.iter().map(|t| format!("entity {t};\n")).collect();
    schema.push_str(&format!(
        "action \"x\" appliesTo {{ principal: [{0}], resource: [{0}] }};\n",
        types.join(", ")
    ));
    let mut files = roomy_tiny_files();
    set(&mut files, "schema.cedarschema", schema);
    set(
        &mut files,
        "policies/allow-x.cedar",
        "permit (principal, action == Action::\"x\", resource);\n",
    );
    assert!(matches!(
        load_err(files),
        PolicyError::TooComplex {
            measure: "request environment count",
            value: 1089,
            max: 1024,
            ..
        }
    ));
}

#[test]
fn validation_work_is_bounded() {
    // 1024 request environments, 4 policies of 255 operators each (251 `+`,
    // two `==`, two `,`): 4 x (255 + 1) x 1024 = 1_048_576 > 1_000_000.
    let types: Vec<String> = (0..32).map(|i| format!("E{i}")).collect();
    let mut schema: String = types.iter().map(|t| format!("entity {t};\n")).collect();
    schema.push_str(&format!(
        "action \"x\" appliesTo {{ principal: [{0}], resource: [{0}] }};\n",
        types.join(", ")
    ));
    let mut files = roomy_tiny_files();
    set(&mut files, "schema.cedarschema", schema);
    let chain = format!("{} == 252", vec!["1"; 252].join(" + "));
    files.remove("policies/allow-x.cedar");
    for i in 0..4 {
        set(
            &mut files,
            &format!("policies/p{i}.cedar"),
            tiny_policy_when(&chain),
        );
    }
    assert!(matches!(
        load_err(files),
        PolicyError::TooComplex {
            value: 1_048_576,
            max: 1_000_000,
            ..
        }
    ));
}

fn chain_entities(n: usize, cycle: bool) -> String {
    let list: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let parent = if cycle && i + 1 == n { 0 } else { i + 1 };
            serde_json::json!({
                "uid": { "type": "A", "id": format!("a{i}") },
                "attrs": {},
                "parents": [{ "type": "A", "id": format!("a{parent}") }],
            })
        })
        .collect();
    serde_json::Value::Array(list).to_string()
}

#[test]
fn entity_hierarchy_is_bounded_and_acyclic() {
    let hierarchy_schema =
        "entity A in [A];\naction \"x\" appliesTo { principal: A, resource: A };\n";

    // A parent chain of 1000 has a closure of ~500,000 pairs.
    let mut files = roomy_tiny_files();
    set(&mut files, "schema.cedarschema", hierarchy_schema);
    set(&mut files, "entities.json", chain_entities(1000, false));
    assert!(matches!(
        load_err(files),
        PolicyError::TooComplex { path, max: 200_000, .. } if path == "entities.json"
    ));

    let mut files = roomy_tiny_files();
    set(&mut files, "schema.cedarschema", hierarchy_schema);
    set(&mut files, "entities.json", chain_entities(3, true));
    assert!(matches!(
        load_err(files),
        PolicyError::EntitiesInvalid(m) if m.contains("cycle")
    ));

    let mut files = roomy_tiny_files();
    set(&mut files, "schema.cedarschema", hierarchy_schema);
    set(&mut files, "entities.json", chain_entities(50, false));
    assert!(PolicyLayer::from_files(files).is_ok());

    let many: Vec<serde_json::Value> = (0..10_001)
        .map(|i| serde_json::json!({ "uid": { "type": "A", "id": format!("{i}") }, "attrs": {}, "parents": [] }))
        .collect();
    let mut files = roomy_tiny_files();
    set(
        &mut files,
        "entities.json",
        serde_json::Value::Array(many).to_string(),
    );
    assert!(matches!(
        load_err(files),
        PolicyError::TooComplex {
            measure: "entity count",
            value: 10_001,
            max: 10_000,
            ..
        }
    ));
}

// ------------------------------------------------- rejections: constitution

#[test]
fn unknown_constitution_key_is_rejected() {
    let files = with_constitution(|c| c.replace("[epoch]\n", "[epoch]\nlength_seconds = 60\n"));
    assert!(matches!(
        load_err(files),
        PolicyError::Constitution { message } if message.contains("length_seconds")
    ));
    let files = with_constitution(|c| format!("override = true\n{c}"));
    assert!(matches!(load_err(files), PolicyError::Constitution { .. }));
}

#[test]
fn a_garbled_constitution_is_one_line_naming_where() {
    let files = with_constitution(|c| c.replace("[epoch]\n", "[epoch\n"));
    let e = load_err(files);
    let shown = e.to_string();
    assert_eq!(shown.lines().count(), 1, "{shown}");
    let line = with_constitution(|c| c)
        .get("constitution.toml")
        .map(|b| {
            String::from_utf8_lossy(b)
                .lines()
                .position(|l| l == "[epoch]")
                .expect("[epoch] line")
                + 1
        })
        .expect("constitution");
    assert!(
        matches!(&e, PolicyError::Constitution { message } if message.starts_with(&format!("line {line}: "))),
        "{shown}"
    );
}

#[test]
fn floats_and_missing_sections_are_rejected() {
    let files = with_constitution(|c| c.replace("alpha_permille = 700", "alpha_permille = 0.7"));
    assert!(matches!(load_err(files), PolicyError::Constitution { .. }));
    let files = with_constitution(|c| c.replace("[epoch]\nlength_decisions = 10000\n", ""));
    assert!(matches!(
        load_err(files),
        PolicyError::Constitution { message } if message.contains("epoch")
    ));
    let files = with_constitution(|c| c.replace("threshold = 3", "threshold = -3"));
    assert!(matches!(load_err(files), PolicyError::Constitution { .. }));
}

#[test]
fn constitution_rule_violations_are_rejected() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "threshold = 3",
            "threshold = 2",
            "amendment.threshold_floor <= amendment.threshold",
        ),
        (
            "threshold_floor = 3",
            "threshold_floor = 0",
            "amendment.threshold_floor >= 1",
        ),
        (
            "validators = 5",
            "validators = 2",
            "amendment.threshold <= amendment.validators",
        ),
        (
            "validators = 5",
            "validators = 6",
            "2 * amendment.threshold > amendment.validators",
        ),
        (
            "alpha_permille = 700",
            "alpha_permille = 1001",
            "uncertainty.alpha_permille <= 1000",
        ),
        (
            "length_decisions = 10000",
            "length_decisions = 0",
            "epoch.length_decisions >= 1",
        ),
        (
            "deadline_entries = 1000",
            "deadline_entries = 0",
            "amendment.deadline_entries >= 1",
        ),
        ("version = 1", "version = 0", "version >= 1"),
        (
            "policies_max = 256",
            "policies_max = 0",
            "limits.policies_max >= 1",
        ),
        (
            "params_bytes_max = 65536",
            "params_bytes_max = 2000000",
            "limits.params_bytes_max <= PARAMS_BYTES_HARD_MAX (1048576)",
        ),
        (
            "layer_bytes_max = 1048576",
            "layer_bytes_max = 8192",
            "limits.policy_bytes_max <= limits.layer_bytes_max",
        ),
        (
            "layer_bytes_max = 1048576",
            "layer_bytes_max = 4194305",
            "limits.layer_bytes_max <= LAYER_BYTES_HARD_MAX (4194304)",
        ),
    ];
    for (from, to, want) in cases {
        let files = with_constitution(|c| {
            assert!(c.contains(from), "{from}");
            c.replacen(from, to, 1)
        });
        match load_err(files) {
            PolicyError::ConstitutionRule { rule, value } => {
                assert_eq!(rule, *want, "{to}");
                assert!(!value.is_empty());
            }
            e => panic!("{to}: wrong error: {e}"),
        }
    }
}

#[test]
fn duplicate_or_malformed_immutable_ids_are_rejected() {
    let files = with_constitution(|c| {
        c.replace("id = \"safety.no-secrets\"", "id = \"payments.blocklist\"")
    });
    assert!(matches!(
        load_err(files),
        PolicyError::ConstitutionRule { rule, .. } if rule.contains("unique")
    ));
    let files = with_constitution(|c| c.replace("id = \"safety.no-secrets\"", "id = \"Safety\""));
    assert!(matches!(load_err(files), PolicyError::BadClauseId(id) if id == "Safety"));
    let files = with_constitution(|c| c.replacen("sha3 = \"", "sha3 = \"zz", 1));
    assert!(matches!(load_err(files), PolicyError::Constitution { .. }));
}

// ------------------------------------------------ rejections: canonical form

#[test]
fn canonical_decode_rejects_truncated_and_trailing_bytes() {
    let bytes = PolicyLayer::example().canonical_bytes();
    for cut in [0, 10, 24, 27, 40, bytes.len() - 1] {
        assert!(
            matches!(decode_err(&bytes[..cut]), PolicyError::Canonical { .. }),
            "cut at {cut}"
        );
    }
    let mut long = bytes.clone();
    long.push(0);
    assert!(matches!(
        decode_err(&long),
        PolicyError::Canonical { offset, .. } if offset == bytes.len()
    ));
}

#[test]
fn canonical_decode_rejects_wrong_tag() {
    let mut bytes = PolicyLayer::example().canonical_bytes();
    bytes[22] = b'2'; // "…/v1" becomes "…/v2"
    assert!(matches!(
        decode_err(&bytes),
        PolicyError::Canonical { offset: 0, .. }
    ));
    let mut bytes = PolicyLayer::example().canonical_bytes();
    bytes[0] = b'S';
    assert!(matches!(
        decode_err(&bytes),
        PolicyError::Canonical { offset: 0, .. }
    ));
}

fn encode(entries: &[(&str, &[u8])], count: u32) -> Vec<u8> {
    let mut e = senatus_genesis::Encoder::new("policy-layer", 1);
    e.u32(count);
    for (p, c) in entries {
        e.str(p).bytes(c);
    }
    e.finish()
}

#[test]
fn canonical_decode_rejects_unsorted_duplicate_and_oversized_entries() {
    let files = tiny_files();
    let mut entries: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_slice()))
        .collect();
    // Sanity: the helper reproduces the real encoding.
    assert_eq!(
        encode(&entries, 4),
        PolicyLayer::from_files(tiny_files())
            .expect("tiny")
            .canonical_bytes()
    );

    entries.swap(0, 1);
    assert!(matches!(
        decode_err(&encode(&entries, 4)),
        PolicyError::Canonical { message, .. } if message.contains("sort")
    ));

    entries.swap(0, 1);
    let dup = entries[3];
    entries.push(dup);
    assert!(matches!(
        decode_err(&encode(&entries, 5)),
        PolicyError::Canonical { message, .. } if message.contains("sort")
    ));

    // A count larger than the bytes could hold is refused before looping.
    let header = encode(&[], u32::MAX);
    assert!(matches!(
        decode_err(&header),
        PolicyError::Canonical { offset: 24, .. }
    ));
    let header = encode(&[], 100);
    assert!(matches!(
        decode_err(&header),
        PolicyError::Canonical { offset: 24, .. }
    ));

    // A length prefix beyond the input is refused before allocation.
    let mut bytes = encode(&[], 1);
    bytes.extend_from_slice(&u32::MAX.to_be_bytes());
    bytes.extend_from_slice(&[0u8; 8]);
    assert!(matches!(
        decode_err(&bytes),
        PolicyError::Canonical { offset: 32, .. }
    ));

    // Non-UTF-8 path.
    let mut e = senatus_genesis::Encoder::new("policy-layer", 1);
    e.u32(1).bytes(&[0xff, 0xfe]).bytes(b"x");
    assert!(matches!(
        decode_err(&e.finish()),
        PolicyError::Canonical { offset: 28, .. }
    ));

    // Structurally fine bytes still go through full validation.
    let mut bad = tiny_files();
    bad.insert("README.md".to_string(), b"x".to_vec());
    let entries: Vec<(&str, &[u8])> = bad
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_slice()))
        .collect();
    assert!(matches!(
        decode_err(&encode(&entries, 5)),
        PolicyError::UnexpectedFile(p) if p == "README.md"
    ));
}

#[test]
fn canonical_decode_refuses_input_over_the_hard_maximum() {
    let bytes = vec![0u8; LAYER_BYTES_HARD_MAX as usize + 1];
    assert!(matches!(
        decode_err(&bytes),
        PolicyError::TooLarge { max, .. } if max == u64::from(LAYER_BYTES_HARD_MAX)
    ));
}

// ------------------------------------------------ the example's behaviour

fn uid(s: &str) -> EntityUid {
    s.parse().expect("entity uid")
}

fn facts() -> serde_json::Value {
    serde_json::json!({
        "pii_detected": false,
        "secrets_detected": false,
        "external_endpoints": 0,
        "destination_external": false,
        "in_change_window": false,
    })
}

fn decide(
    layer: &PolicyLayer,
    agent: &str,
    action: &str,
    tenant: &str,
    context: serde_json::Value,
) -> Response {
    let schema = layer.schema();
    let action = uid(&format!("Senatus::Action::\"{action}\""));
    let context = Context::from_json_value(context, Some((schema, &action))).expect("context");
    let request = Request::new(
        uid(&format!("Senatus::Agent::\"{agent}\"")),
        action,
        uid(&format!("Senatus::Tenant::\"{tenant}\"")),
        context,
        Some(schema),
    )
    .expect("request valid against the schema");
    Authorizer::new().is_authorized(&request, layer.policies(), layer.entities())
}

fn transfer(amount: i64, currency: &str, to: &str) -> serde_json::Value {
    serde_json::json!({
        "params": { "amount": amount, "currency": currency, "to_account": to },
        "facts": facts(),
    })
}

fn reasons(r: &Response) -> Vec<String> {
    let mut v: Vec<String> = r.diagnostics().reason().map(|p| p.to_string()).collect();
    v.sort();
    v
}

#[track_caller]
fn assert_decision(r: &Response, decision: Decision, want_reasons: &[&str]) {
    assert_eq!(
        r.diagnostics().errors().count(),
        0,
        "evaluation errors: {r:?}"
    );
    assert_eq!(r.decision(), decision, "{r:?}");
    assert_eq!(reasons(r), want_reasons, "{r:?}");
}

#[test]
fn example_governs_transfers_per_tenant_limit_and_blocklist() {
    let layer = PolicyLayer::example();
    let ok = decide(
        &layer,
        "pay-bot",
        "payments.transfer",
        "acme",
        transfer(50_000, "EUR", "acct-1"),
    );
    assert_decision(&ok, Decision::Allow, &["payments.transfer-within-limit"]);

    let at_limit = decide(
        &layer,
        "pay-bot",
        "payments.transfer",
        "acme",
        transfer(100_000, "EUR", "acct-1"),
    );
    assert_decision(
        &at_limit,
        Decision::Allow,
        &["payments.transfer-within-limit"],
    );

    // Over acme's limit: no permit matches, silence (Deny without reasons).
    let over = decide(
        &layer,
        "pay-bot",
        "payments.transfer",
        "acme",
        transfer(200_000, "EUR", "acct-1"),
    );
    assert_decision(&over, Decision::Deny, &[]);

    // The same amount is within globex's sealed limit.
    let globex = decide(
        &layer,
        "pay-bot",
        "payments.transfer",
        "globex",
        transfer(200_000, "USD", "acct-1"),
    );
    assert_decision(
        &globex,
        Decision::Allow,
        &["payments.transfer-within-limit"],
    );

    let wrong_currency = decide(
        &layer,
        "pay-bot",
        "payments.transfer",
        "globex",
        transfer(10, "EUR", "acct-1"),
    );
    assert_decision(&wrong_currency, Decision::Deny, &[]);

    let blocked = decide(
        &layer,
        "pay-bot",
        "payments.transfer",
        "acme",
        transfer(10, "EUR", "acct-sanctioned-0001"),
    );
    assert_decision(&blocked, Decision::Deny, &["payments.blocklist"]);

    let mut with_secret = transfer(10, "EUR", "acct-1");
    with_secret["facts"]["secrets_detected"] = true.into();
    let secret = decide(&layer, "pay-bot", "payments.transfer", "acme", with_secret);
    assert_decision(&secret, Decision::Deny, &["safety.no-secrets"]);
}

#[test]
fn example_governs_exports() {
    let layer = PolicyLayer::example();
    let export = |pii: bool, external: bool, rows: i64| {
        let mut f = facts();
        f["pii_detected"] = pii.into();
        f["destination_external"] = external.into();
        serde_json::json!({
            "params": { "dataset": "crm", "destination": "s3://acme-internal", "rows": rows },
            "facts": f,
        })
    };
    let internal = decide(
        &layer,
        "etl-bot",
        "data.export",
        "acme",
        export(true, false, 100),
    );
    assert_decision(&internal, Decision::Allow, &["data.export-internal"]);

    let leak = decide(
        &layer,
        "etl-bot",
        "data.export",
        "acme",
        export(true, true, 100),
    );
    assert_decision(&leak, Decision::Deny, &["data.no-pii-external"]);

    let external_clean = decide(
        &layer,
        "etl-bot",
        "data.export",
        "acme",
        export(false, true, 100),
    );
    assert_decision(&external_clean, Decision::Deny, &[]);

    let too_many_rows = decide(
        &layer,
        "etl-bot",
        "data.export",
        "acme",
        export(false, false, 10_001),
    );
    assert_decision(&too_many_rows, Decision::Deny, &[]);
}

#[test]
fn example_governs_infra_mutation() {
    let layer = PolicyLayer::example();
    let mutate = |window: bool| {
        let mut f = facts();
        f["in_change_window"] = window.into();
        serde_json::json!({
            "params": { "target": "k8s/prod/api", "operation": "scale" },
            "facts": f,
        })
    };
    let sre = decide(&layer, "ops-agent-1", "infra.mutate", "acme", mutate(true));
    assert_decision(&sre, Decision::Allow, &["infra.mutate-sre-window"]);

    let outside = decide(&layer, "ops-agent-1", "infra.mutate", "acme", mutate(false));
    assert_decision(&outside, Decision::Deny, &[]);

    let not_sre = decide(&layer, "pay-bot", "infra.mutate", "acme", mutate(true));
    assert_decision(&not_sre, Decision::Deny, &[]);
}

#[test]
fn example_is_silent_on_unknown_actions() {
    let layer = PolicyLayer::example();
    // Not in the schema, so the request is built without it.
    let context =
        Context::from_json_value(serde_json::json!({ "params": {}, "facts": facts() }), None)
            .expect("context");
    let request = Request::new(
        uid("Senatus::Agent::\"mail-bot\""),
        uid("Senatus::Action::\"email.send\""),
        uid("Senatus::Tenant::\"acme\""),
        context,
        None,
    )
    .expect("request");
    let r = Authorizer::new().is_authorized(&request, layer.policies(), layer.entities());
    assert_decision(&r, Decision::Deny, &[]);
}

#[test]
fn digest_type_is_the_codec_digest() {
    // The layer digest is the same type the genesis and seals carry.
    let d: Digest = PolicyLayer::example().digest();
    assert_eq!(Digest::from_hex(&d.to_hex()).expect("hex"), d);
}

#[test]
fn the_identity_registry_is_part_of_the_sealed_layer_and_fails_closed() {
    use senatus_genesis::registry::{IDENTITIES_FILE, RegistryError, Role};
    // No file: an empty registry, and the layer is valid.
    let tiny = PolicyLayer::from_files(tiny_files()).expect("tiny layer");
    assert!(tiny.registry().identities().is_empty());
    // The example seals the three published test keys.
    let example = PolicyLayer::example();
    let roles: Vec<(&str, Role)> = example
        .registry()
        .identities()
        .iter()
        .map(|i| (i.name.as_str(), i.role))
        .collect();
    assert_eq!(
        roles,
        [
            ("agent-7", Role::Agent),
            ("agent-9", Role::Agent),
            ("auditor-1", Role::Auditor)
        ]
    );
    assert_eq!(example.registry().published_keys().len(), 3);
    // Changing the registry changes the digest: identities change only by
    // amendment.
    let mut ids = example.registry().identities().to_vec();
    ids.pop();
    let smaller = senatus_genesis::registry::Registry::new(ids).expect("valid");
    let amended = example.with_registry(&smaller).expect("valid layer");
    assert_ne!(amended.digest(), example.digest());
    assert_eq!(amended.registry(), &smaller);
    // A registry that breaks a rule makes the whole layer invalid, naming
    // the rule.
    let mut files = example_files();
    let text = String::from_utf8(files[IDENTITIES_FILE].clone()).expect("utf-8");
    files.insert(
        IDENTITIES_FILE.to_string(),
        text.replace("name = \"agent-9\"", "name = \"agent-7\"")
            .into_bytes(),
    );
    match PolicyLayer::from_files(files) {
        Err(PolicyError::Registry(RegistryError::DuplicateName(n))) => assert_eq!(n, "agent-7"),
        other => panic!("expected a duplicate name, got {other:?}"),
    }
    let mut files = example_files();
    files.insert(
        IDENTITIES_FILE.to_string(),
        b"[[identity]]\nname = 3\n".to_vec(),
    );
    assert!(matches!(
        PolicyLayer::from_files(files),
        Err(PolicyError::Registry(RegistryError::Parse(_)))
    ));
}

/// The tiny layer with a `[section]` table holding `body` added to its
/// constitution.
fn tiny_with_table(section: &str, body: &str) -> Result<PolicyLayer, PolicyError> {
    let mut files = tiny_files();
    let c = String::from_utf8(files["constitution.toml"].clone()).expect("utf-8");
    files.insert(
        "constitution.toml".into(),
        format!("{c}\n[{section}]\n{body}\n").into_bytes(),
    );
    PolicyLayer::from_files(files)
}

#[test]
fn the_request_freshness_window_is_bounded_by_the_constitution() {
    let with = |table: &str| tiny_with_table("requests", table);
    assert_eq!(
        with("signed_skew_ms_max = 60000")
            .expect("valid")
            .constitution()
            .requests
            .signed_skew_ms_max,
        60_000
    );
    for bad in ["signed_skew_ms_max = 0", "signed_skew_ms_max = 300001"] {
        match with(bad) {
            Err(PolicyError::ConstitutionRule { rule, .. }) => {
                assert!(rule.contains("requests.signed_skew_ms_max"), "{rule}")
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
    assert_eq!(
        PolicyLayer::from_files(tiny_files())
            .expect("tiny")
            .constitution()
            .requests
            .signed_skew_ms_max,
        120_000,
        "the default"
    );
}

#[test]
fn quotas_are_optional_defaulted_and_bounded_by_the_constitution() {
    let with = |table: &str| tiny_with_table("quotas", table);
    // Absent: the defaults, generous enough never to throttle the bench.
    let plain = PolicyLayer::from_files(tiny_files()).expect("tiny");
    let q = plain.constitution().quotas;
    assert_eq!(
        (
            q.window_ms,
            q.agent_decisions_max,
            q.tenant_decisions_max,
            q.agent_redemptions_max,
            q.tenant_redemptions_max
        ),
        (1_000, 20_000, 100_000, 20_000, 100_000)
    );
    assert!(q.is_default());
    // The bundled example has no table (its digest is pinned above).
    assert!(PolicyLayer::example().constitution().quotas.is_default());
    // Set keys override, the rest keep their defaults; a tenant limit
    // below the agent limit is allowed (each is checked on its own).
    let set = with("window_ms = 600000\nagent_decisions_max = 3\ntenant_decisions_max = 2")
        .expect("valid");
    let q = set.constitution().quotas;
    assert_eq!(q.window_ms, 600_000);
    assert_eq!((q.agent_decisions_max, q.tenant_decisions_max), (3, 2));
    assert_eq!(
        (q.agent_redemptions_max, q.tenant_redemptions_max),
        (20_000, 100_000)
    );
    assert!(!q.is_default());
    assert_eq!(
        with("window_ms = 3600000")
            .expect("the hard maximum itself")
            .constitution()
            .quotas
            .window_ms,
        3_600_000
    );
    // Each rule refused, naming it and the value.
    for (bad, want_rule, want_value) in [
        (
            "window_ms = 0",
            "1 <= quotas.window_ms <= QUOTA_WINDOW_MS_HARD_MAX (3600000)",
            "window_ms = 0",
        ),
        (
            "window_ms = 3600001",
            "1 <= quotas.window_ms <= QUOTA_WINDOW_MS_HARD_MAX (3600000)",
            "window_ms = 3600001",
        ),
        (
            "agent_decisions_max = 0",
            "quotas.agent_decisions_max >= 1",
            "0",
        ),
        (
            "tenant_decisions_max = 0",
            "quotas.tenant_decisions_max >= 1",
            "0",
        ),
        (
            "agent_redemptions_max = 0",
            "quotas.agent_redemptions_max >= 1",
            "0",
        ),
        (
            "tenant_redemptions_max = 0",
            "quotas.tenant_redemptions_max >= 1",
            "0",
        ),
    ] {
        match with(bad) {
            Err(PolicyError::ConstitutionRule { rule, value }) => {
                assert_eq!((rule, value.as_str()), (want_rule, want_value), "{bad}")
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
    // Unknown keys and negative counts do not parse.
    for bad in ["decisions_max = 5", "agent_decisions_max = -1"] {
        assert!(
            matches!(with(bad), Err(PolicyError::Constitution { .. })),
            "{bad}"
        );
    }
}
