//! The generator over small hand-written OpenAPI fragments: each test
//! checks the text and that Cedar loads it beside the `k8s` schema.

use serde_json::{json, Value};

/// The authorization part of the built-in schema (as `policy::AUTHORIZATION_SCHEMA`,
/// read here directly so the admission module never depends on `policy`).
const AUTHORIZATION_SCHEMA: &str = include_str!("../../../schema/k8s.cedarschema");

use super::{generate, Document, Error};

/// A document defining `schemas`, with a `post` operation for each kind.
fn doc(name: &str, schemas: Value, kinds: &[(&str, &str, &str)]) -> Document {
    let mut paths = serde_json::Map::new();
    for (i, (group, version, kind)) in kinds.iter().enumerate() {
        paths.insert(
            format!("/path/{i}"),
            json!({"post": {"x-kubernetes-action": "post",
                "x-kubernetes-group-version-kind": {"group": group, "version": version, "kind": kind}}}),
        );
    }
    Document {
        name: name.to_owned(),
        value: json!({"openapi": "3.0.0", "paths": paths, "components": {"schemas": schemas}}),
    }
}

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

fn meta() -> Value {
    json!({"type": "object", "properties": {
        "name": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
    }})
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!([{"group": group, "version": version, "kind": kind}])
}

/// A kind `Thing` of `example.com/v1` with these properties.
fn thing(properties: Value, required: &[&str]) -> Document {
    doc(
        "thing.json",
        json!({
            OBJECT_META: meta(),
            "com.example.v1.Thing": {
                "type": "object",
                "properties": properties,
                "required": required,
                "x-kubernetes-group-version-kind": gvk("example.com", "v1", "Thing"),
            },
        }),
        &[("example.com", "v1", "Thing")],
    )
}

/// Generates, loads the result with the `k8s` schema (panicking on any
/// error), and returns the text.
fn text(docs: &[Document]) -> String {
    let generated = generate(docs, "test").unwrap_or_else(|e| panic!("{e}"));
    let full = format!("{}\n{}", AUTHORIZATION_SCHEMA, generated.text);
    if let Err(e) = cedar_policy::Schema::from_cedarschema_str(&full) {
        panic!("{:?}\n{}", miette::Report::new(e), generated.text);
    }
    generated.text
}

/// The block `{kind} {name} = {...};` of the text.
fn block<'t>(text: &'t str, decl: &str) -> &'t str {
    let start = text
        .find(&format!("{decl} = "))
        .unwrap_or_else(|| panic!("no `{decl}` in\n{text}"));
    let end = text[start..].find("\n  };").unwrap() + start;
    &text[start..end]
}

#[test]
fn string_maps_are_key_value_sets() {
    let t = text(&[thing(
        json!({
            "data": {"type": "object", "additionalProperties": {"type": "string"}},
            "selector": {"type": "object", "additionalProperties": {
                "type": "array", "items": {"type": "string"}}},
            "limits": {"type": "object", "additionalProperties": {
                "$ref": "#/components/schemas/io.k8s.apimachinery.pkg.api.resource.Quantity"}},
            "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
        }),
        &[],
    )
    .with(
        "io.k8s.apimachinery.pkg.api.resource.Quantity",
        json!({
        "oneOf": [{"type": "string"}, {"type": "number"}]}),
    )]);
    let b = block(&t, "entity Thing");
    assert!(b.contains(r#""data"?: Set<meta::v1::KeyValue>"#), "{b}");
    assert!(b.contains(r#""limits"?: Set<meta::v1::KeyValue>"#), "{b}");
    assert!(
        b.contains(r#""selector"?: Set<meta::v1::KeyValueStringSlice>"#),
        "{b}"
    );
    assert!(!b.contains("counts"), "maps of numbers are left out: {b}");
    assert!(block(&t, "type KeyValue").contains(r#""value": String"#));
    assert!(block(&t, "type KeyValueStringSlice").contains(r#""value": Set<String>"#));
    assert!(block(&t, "type ObjectMeta").contains(r#""labels"?: Set<KeyValue>"#));
}

#[test]
fn scalars_map_to_string_long_and_bool() {
    let t = text(&[thing(
        json!({
            "name": {"type": "string"},
            "replicas": {"type": "integer", "format": "int32"},
            "paused": {"type": "boolean"},
            "ratio": {"type": "number", "format": "double"},
            "port": {"x-kubernetes-int-or-string": true,
                     "anyOf": [{"type": "integer"}, {"type": "string"}]},
            "target": {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.util.intstr.IntOrString"},
            "created": {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Time"},
            "args": {"type": "array", "items": {"type": "string"}},
            "matrix": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}},
        }),
        &[],
    )
    .with(
        "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
        json!({"type": "string", "format": "int-or-string"}),
    )
    .with(
        "io.k8s.apimachinery.pkg.apis.meta.v1.Time",
        json!({"type": "string", "format": "date-time"}),
    )]);
    let b = block(&t, "entity Thing");
    for line in [
        r#""name"?: String"#,
        r#""replicas"?: Long"#,
        r#""paused"?: Bool"#,
        r#""ratio"?: String"#,
        r#""port"?: String"#,
        r#""target"?: String"#,
        r#""created"?: String"#,
        r#""args"?: Set<String>"#,
        r#""matrix"?: Set<Set<Long>>"#,
    ] {
        assert!(b.contains(line), "{line} in {b}");
    }
    // Scalar definitions are written inline, never as common types.
    assert!(!t.contains("type Time"), "{t}");
}

#[test]
fn all_of_with_one_ref_is_the_referenced_type() {
    let t = text(&[thing(
        json!({
            "spec": {"description": "the spec", "default": {},
                     "allOf": [{"$ref": "#/components/schemas/com.example.v1.ThingSpec"}]},
        }),
        &["spec"],
    )
    .with(
        "com.example.v1.ThingSpec",
        json!({"type": "object", "properties": {"size": {"type": "integer"}}}),
    )]);
    assert!(
        block(&t, "entity Thing").contains(r#""spec": ThingSpec"#),
        "{t}"
    );
    assert!(
        block(&t, "type ThingSpec").contains(r#""size"?: Long"#),
        "{t}"
    );
}

#[test]
fn recursion_is_cut_where_it_closes_a_cycle() {
    // JSONSchemaProps refers to itself directly and through a list; A and
    // B refer to each other.
    let props = "#/components/schemas/com.example.v1.Props";
    let t = text(&[thing(
        json!({
            "schema": {"$ref": props},
            "a": {"$ref": "#/components/schemas/com.example.v1.A"},
        }),
        &[],
    )
    .with(
        "com.example.v1.Props",
        json!({"type": "object", "properties": {
            "type": {"type": "string"},
            "not": {"$ref": props},
            "allOf": {"type": "array", "items": {"$ref": props}},
            "properties": {"type": "object", "additionalProperties": {"$ref": props}},
        }}),
    )
    .with(
        "com.example.v1.A",
        json!({"type": "object", "properties": {
            "name": {"type": "string"},
            "b": {"$ref": "#/components/schemas/com.example.v1.B"}}}),
    )
    .with(
        "com.example.v1.B",
        json!({"type": "object", "properties": {
            "name": {"type": "string"},
            "a": {"$ref": "#/components/schemas/com.example.v1.A"}}}),
    )]);
    let p = block(&t, "type Props");
    assert!(p.contains(r#""type"?: String"#), "{p}");
    for cut in ["not", "allOf", "properties"] {
        assert!(!p.contains(&format!("\"{cut}\"")), "{cut} in {p}");
    }
    assert!(block(&t, "type A").contains(r#""b"?: B"#), "{t}");
    assert!(!block(&t, "type B").contains(r#""a""#), "{t}");
}

#[test]
fn required_follows_the_schema_except_metadata_and_its_name() {
    let t = text(&[thing(
        json!({
            "spec": {"type": "object", "required": ["size"], "properties": {
                "size": {"type": "integer"}, "owner": {"type": "string"}}},
            "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
            "metadata": {"$ref": format!("#/components/schemas/{OBJECT_META}")},
        }),
        &["spec"],
    )]);
    let b = block(&t, "entity Thing");
    assert!(b.contains(r#""metadata": meta::v1::ObjectMeta"#), "{b}");
    assert!(b.contains(r#""spec": {"#), "{b}");
    assert!(b.contains(r#""size": Long"#), "{b}");
    assert!(b.contains(r#""owner"?: String"#), "{b}");
    assert!(b.contains(r#""status"?: {"#), "{b}");
    assert!(b.contains(r#""oldObject"?: Thing"#), "{b}");
    assert!(
        block(&t, "type ObjectMeta").contains(r#""name": String"#),
        "{t}"
    );
}

#[test]
fn a_kind_without_metadata_still_has_it() {
    let t = text(&[thing(json!({"size": {"type": "integer"}}), &[])]);
    assert!(block(&t, "entity Thing").contains(r#""metadata": meta::v1::ObjectMeta"#));
}

#[test]
fn crd_types_are_named_by_their_group() {
    let t = text(&[doc(
        "apis_stable.example.com_v1.json",
        json!({
            OBJECT_META: meta(),
            "com.example.stable.v1.Widget": {
                "type": "object",
                "properties": {
                    "metadata": {"allOf": [{"$ref": format!("#/components/schemas/{OBJECT_META}")}]},
                    "spec": {"$ref": "#/components/schemas/com.example.stable.v1.WidgetSpec"},
                },
                "x-kubernetes-group-version-kind": gvk("stable.example.com", "v1", "Widget"),
            },
            "com.example.stable.v1.WidgetSpec": {"type": "object", "properties": {
                "size": {"type": "integer"}, "owner": {"type": "string"}}},
        }),
        &[("stable.example.com", "v1", "Widget")],
    )]);
    assert!(t.contains("namespace com::example::stable::v1 {"), "{t}");
    assert!(t.contains("      com::example::stable::v1::Widget"), "{t}");
    assert!(
        block(&t, "entity Widget").contains(r#""spec"?: WidgetSpec"#),
        "{t}"
    );
}

#[test]
fn built_in_packages_go_to_their_groups_namespace() {
    let t = text(&[doc(
        "apis_apps_v1.json",
        json!({
            OBJECT_META: meta(),
            "io.k8s.api.apps.v1.Deployment": {
                "type": "object",
                "properties": {"spec": {"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"}},
                "x-kubernetes-group-version-kind": gvk("apps", "v1", "Deployment"),
            },
            "io.k8s.api.apps.v1.DeploymentSpec": {"type": "object", "properties": {
                "template": {"$ref": "#/components/schemas/io.k8s.api.core.v1.PodTemplateSpec"}}},
            // No core/v1 kind in this document: named by its package.
            "io.k8s.api.core.v1.PodTemplateSpec": {"type": "object", "properties": {
                "name": {"type": "string"}}},
            "io.k8s.api.rbac.v1.Subject": {"type": "object", "properties": {
                "name": {"type": "string"}}},
        }),
        &[("apps", "v1", "Deployment")],
    )]);
    assert!(block(&t, "type DeploymentSpec").contains(r#""template"?: core::v1::PodTemplateSpec"#));
    assert!(
        t.contains("namespace core::v1 {\n  type PodTemplateSpec = {"),
        "{t}"
    );
    // Only referenced definitions are written.
    assert!(!t.contains("Subject"), "{t}");
}

#[test]
fn free_form_objects_are_left_out() {
    let t = text(&[thing(
        json!({
            "raw": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "empty": {"type": "object"},
            "any": {},
            "objects": {"type": "object", "additionalProperties": {
                "type": "object", "properties": {"a": {"type": "string"}}}},
            "anything": {"type": "object", "additionalProperties": true},
            "untyped": {"type": "array"},
            "keep": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                     "properties": {"known": {"type": "string"}}},
        }),
        &[],
    )]);
    let b = block(&t, "entity Thing");
    for gone in ["raw", "empty", "any", "objects", "anything", "untyped"] {
        assert!(!b.contains(&format!("\"{gone}\"")), "{gone} in {b}");
    }
    assert!(b.contains(r#""known"?: String"#), "{b}");
}

#[test]
fn attribute_names_are_quoted_and_escaped() {
    let t = text(&[thing(
        json!({
            "x-y": {"type": "string"},
            "a\"b\\c": {"type": "string"},
            "in": {"type": "string"},
            "ünïcode": {"type": "string"},
        }),
        &[],
    )]);
    let b = block(&t, "entity Thing");
    assert!(b.contains(r#""x-y"?: String"#), "{b}");
    assert!(b.contains(r#""a\"b\\c"?: String"#), "{b}");
    assert!(b.contains(r#""in"?: String"#), "{b}");
}

#[test]
fn entities_are_the_kinds_admission_operations_name() {
    let mut d = doc(
        "api_v1.json",
        json!({
            OBJECT_META: meta(),
            "io.k8s.api.core.v1.ConfigMap": {"type": "object",
                "properties": {"data": {"type": "object", "additionalProperties": {"type": "string"}}},
                "x-kubernetes-group-version-kind": gvk("", "v1", "ConfigMap")},
            "io.k8s.api.core.v1.ConfigMapList": {"type": "object",
                "properties": {"items": {"type": "array", "items": {
                    "$ref": "#/components/schemas/io.k8s.api.core.v1.ConfigMap"}}},
                "x-kubernetes-group-version-kind": gvk("", "v1", "ConfigMapList")},
            "io.k8s.api.core.v1.ComponentStatus": {"type": "object",
                "properties": {"x": {"type": "string"}},
                "x-kubernetes-group-version-kind": gvk("", "v1", "ComponentStatus")},
            "io.k8s.apimachinery.pkg.apis.meta.v1.Status": {"type": "object",
                "properties": {"code": {"type": "integer"}},
                "x-kubernetes-group-version-kind": gvk("", "v1", "Status")},
        }),
        &[],
    );
    let ops = [
        ("post", "ConfigMap"),
        ("put", "ConfigMap"),
        ("delete", "ConfigMap"),
        ("list", "ConfigMap"),
        ("get", "ComponentStatus"),
        ("connect", "PodExecOptions"),
    ];
    let paths = d.value["paths"].as_object_mut().unwrap();
    for (i, (action, kind)) in ops.iter().enumerate() {
        paths.insert(
            format!("/p{i}"),
            json!({"get": {"x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": {"group": "", "version": "v1", "kind": kind}}}),
        );
    }
    let generated = generate(std::slice::from_ref(&d), "").unwrap();
    assert_eq!(generated.entity_types, 2, "{}", generated.text);
    let t = text(&[d]);
    assert!(t.contains("entity ConfigMap = "), "{t}");
    assert!(t.contains("entity PodExecOptions = "), "{t}");
    for absent in ["ConfigMapList", "ComponentStatus", "Status"] {
        assert!(!t.contains(&format!("entity {absent} ")), "{absent} in {t}");
    }
    assert!(t.contains(
        "action \"create\" in [Action::\"all\"] appliesTo {\n    principal: [k8s::User, k8s::ServiceAccount, k8s::Node],\n    resource: [\n      core::v1::ConfigMap\n    ],"
    ), "{t}");
    assert!(
        t.contains("resource: [\n      core::v1::PodExecOptions\n    ]"),
        "{t}"
    );
    assert!(t.contains("action \"all\";"), "{t}");
    assert!(block(&t, "entity PodExecOptions").contains(r#""command"?: Set<String>"#));
}

#[test]
fn output_does_not_depend_on_document_order() {
    let a = thing(json!({"a": {"type": "string"}}), &[]);
    let mut b = doc(
        "other.json",
        json!({
            OBJECT_META: meta(),
            "org.example.v2.Other": {"type": "object", "properties": {"b": {"type": "integer"}},
                "x-kubernetes-group-version-kind": gvk("example.org", "v2", "Other")},
        }),
        &[("example.org", "v2", "Other")],
    );
    b.name = "b.json".into();
    let one = text(&[a.clone(), b.clone()]);
    let two = text(&[b, a]);
    assert_eq!(one, two);
}

#[test]
fn malformed_documents_name_the_file_and_definition() {
    for (schema, want) in [
        (json!({"type": 5}), "type is not a string"),
        (
            json!({"type": "object", "properties": []}),
            "properties is not an object",
        ),
        (
            json!({"$ref": "#/components/schemas/nowhere"}),
            "$ref to nowhere, which no document defines",
        ),
        (json!({"$ref": "http://elsewhere"}), "unsupported $ref"),
        (
            json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": "a"}),
            "required is not an array",
        ),
        (json!("text"), "schema is not an object"),
    ] {
        let d = thing(json!({"bad": schema}), &[]);
        let e = generate(&[d], "").unwrap_err();
        assert!(matches!(e, Error::Malformed { .. }), "{e}");
        let msg = e.to_string();
        assert!(
            msg.starts_with("thing.json: com.example.v1.Thing.bad"),
            "{msg}"
        );
        assert!(msg.contains(want), "{msg} should say {want}");
    }
    let mut d = thing(json!({}), &[]);
    d.value["components"]["schemas"]["com.example.v1.Thing"]["x-kubernetes-group-version-kind"] =
        json!([{"group": "g"}]);
    let e = generate(&[d], "").unwrap_err();
    assert!(e.to_string().contains("without a version"), "{e}");
}

#[test]
fn deep_nesting_is_cut_without_exhausting_the_stack() {
    let mut schema = json!({"type": "string"});
    for _ in 0..120 {
        schema = json!({"type": "object", "properties": {"x": schema}});
    }
    let generated = generate(&[thing(json!({"deep": schema}), &[])], "").unwrap();
    assert!(
        generated
            .warnings
            .iter()
            .any(|w| w.contains("nested deeper")),
        "{:?}",
        generated.warnings
    );
}

impl Document {
    /// The document with one more definition.
    fn with(mut self, name: &str, schema: Value) -> Document {
        self.value["components"]["schemas"][name] = schema;
        self
    }
}

mod arbitrary {
    //! Any document gives an error or a schema that Cedar loads.

    use proptest::prelude::*;
    use serde_json::{json, Value};

    use super::super::generate;
    use super::{doc, gvk, meta, AUTHORIZATION_SCHEMA, OBJECT_META};

    const KEYS: &[&str] = &[
        "type",
        "properties",
        "items",
        "$ref",
        "allOf",
        "oneOf",
        "additionalProperties",
        "required",
        "x-kubernetes-int-or-string",
        "x-kubernetes-preserve-unknown-fields",
        "a",
        "b-c",
    ];

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            prop::sample::select(vec![
                "string",
                "integer",
                "number",
                "boolean",
                "array",
                "object",
                "null",
                "#/components/schemas/com.example.v1.A",
                "#/components/schemas/com.example.v1.B",
                "#/components/schemas/com.example.v1.Thing",
                "#/components/schemas/missing",
                "a",
            ])
            .prop_map(|s| json!(s)),
        ];
        leaf.prop_recursive(5, 48, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(prop::sample::select(KEYS), inner, 0..5).prop_map(
                    |m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
                ),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn any_definitions_give_an_error_or_a_loadable_schema(
            thing in value(), a in value(), b in value(),
        ) {
            let mut thing = thing;
            if let Value::Object(o) = &mut thing {
                o.insert("x-kubernetes-group-version-kind".into(), gvk("example.com", "v1", "Thing"));
            }
            let d = doc("any.json", json!({
                OBJECT_META: meta(),
                "com.example.v1.Thing": thing,
                "com.example.v1.A": a,
                "com.example.v1.B": b,
            }), &[("example.com", "v1", "Thing")]);
            if let Ok(generated) = generate(&[d], "") {
                let full = format!("{}\n{}", AUTHORIZATION_SCHEMA, generated.text);
                prop_assert!(
                    cedar_policy::Schema::from_cedarschema_str(&full).is_ok(),
                    "{}", generated.text
                );
            }
        }
    }
}
