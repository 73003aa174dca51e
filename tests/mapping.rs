//! Every row of the entity model's mapping tables and every decision rule,
//! each shown by a policy that can only be satisfied if the row holds.

use std::sync::Arc;

use cedar_authorizer::decision::{Decision, Verdict};
use cedar_authorizer::engine::{Engine, Exemptions};
use cedar_authorizer::policy::{self, LoadError, SchemaBundle};
use cedar_authorizer::sar;
use serde_json::json;

fn load(files: &[(&str, &str)]) -> Result<policy::Snapshot, LoadError> {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let p = dir.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let schema = Arc::new(SchemaBundle::load(None).unwrap());
    policy::load(dir.path(), &schema, 1)
}

fn decide_with(policies: &str, spec: serde_json::Value, exemptions: Exemptions) -> Decision {
    let snapshot = load(&[("p.cedar", policies)]).unwrap_or_else(|e| panic!("{e}"));
    let engine = Engine::new(snapshot, exemptions, 0);
    let body = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec});
    let review = sar::parse_review(&serde_json::to_vec(&body).unwrap()).unwrap();
    (*engine.decide(&review.request).decision).clone()
}

fn decide(policies: &str, spec: serde_json::Value) -> Decision {
    decide_with(policies, spec, Exemptions::default())
}

fn allowed(policies: &str, spec: serde_json::Value) -> bool {
    let d = decide(policies, spec);
    assert!(d.errors.is_empty(), "{:?}", d.errors);
    d.verdict == Verdict::Allowed
}

fn res(user: &str, attrs: serde_json::Value) -> serde_json::Value {
    json!({"user": user, "resourceAttributes": attrs})
}

fn get_pods(user: &str) -> serde_json::Value {
    res(
        user,
        json!({"verb": "get", "version": "v1", "resource": "pods", "namespace": "ns"}),
    )
}

#[test]
fn service_account_usernames_become_service_accounts() {
    let p = r#"permit(principal is k8s::ServiceAccount, action, resource)
        when { principal.namespace == "ns" && principal.name == "sa" &&
               principal == k8s::ServiceAccount::"system:serviceaccount:ns:sa" };"#;
    assert!(allowed(p, get_pods("system:serviceaccount:ns:sa")));
}

#[test]
fn malformed_service_account_and_node_names_fall_back_to_user() {
    let p =
        r#"permit(principal is k8s::User, action, resource) when { principal.name like "*:*" };"#;
    let no_exemptions = Exemptions {
        control_plane: false,
        users: vec![],
    };
    for user in [
        "system:serviceaccount:a:b:c",
        "system:serviceaccount::x",
        "system:serviceaccount:bad",
        "system:node:",
        "system:node:a:b",
    ] {
        let d = decide_with(p, get_pods(user), no_exemptions.clone());
        assert_eq!(d.verdict, Verdict::Allowed, "{user}");
    }
}

#[test]
fn node_usernames_become_nodes() {
    let p = r#"permit(principal is k8s::Node, action, resource)
        when { principal.name == "worker-1" && principal == k8s::Node::"system:node:worker-1" };"#;
    assert!(allowed(p, get_pods("system:node:worker-1")));
}

#[test]
fn other_usernames_are_users_named_by_username() {
    let p = r#"permit(principal == k8s::User::"alice", action, resource) when { principal.name == "alice" };"#;
    assert!(allowed(p, get_pods("alice")));
    assert!(!allowed(p, get_pods("bob")));
}

#[test]
fn uid_is_an_attribute_present_only_when_sent() {
    let p = r#"permit(principal is k8s::User, action, resource) when { principal has uid && principal.uid == "u-1" };"#;
    let mut spec = get_pods("alice");
    spec["uid"] = json!("u-1");
    assert!(allowed(p, spec));
    let mut spec = get_pods("alice");
    spec["uid"] = json!("");
    assert!(!allowed(p, spec));
}

#[test]
fn extra_is_a_record_set_and_entity_tags() {
    let attr = r#"permit(principal is k8s::User, action, resource)
        when { principal has extra && principal.extra.contains({"key": "scopes", "values": ["read", "write"]}) };"#;
    let tags = r#"permit(principal is k8s::User, action, resource)
        when { principal.hasTag("scopes") && principal.getTag("scopes").contains("write") };"#;
    let mut spec = get_pods("alice");
    spec["extra"] = json!({"scopes": ["write", "read", "read"]});
    assert!(allowed(attr, spec.clone()));
    assert!(allowed(tags, spec));
    assert!(!allowed(attr, get_pods("alice")));
    assert!(!allowed(tags, get_pods("alice")));
    // A key with no values still counts as sent.
    let empty = r#"permit(principal is k8s::User, action, resource) when { principal.hasTag("empty") && principal.getTag("empty").isEmpty() };"#;
    assert!(!allowed(empty, get_pods("alice")));
    let mut spec = get_pods("alice");
    spec["extra"] = json!({"empty": []});
    assert!(allowed(empty, spec));
}

#[test]
fn groups_are_parents() {
    let p = r#"permit(principal in k8s::Group::"g2", action, resource);"#;
    let mut spec = get_pods("alice");
    spec["groups"] = json!(["g1", "g2", "g2"]);
    assert!(allowed(p, spec));
    assert!(!allowed(p, get_pods("alice")));
}

#[test]
fn v1beta1_spells_groups_group() {
    let snapshot = load(&[(
        "p.cedar",
        r#"permit(principal in k8s::Group::"g", action, resource);"#,
    )])
    .unwrap();
    let engine = Engine::new(snapshot, Exemptions::default(), 0);
    let body = json!({"apiVersion": "authorization.k8s.io/v1beta1", "kind": "SubjectAccessReview",
        "spec": {"user": "a", "group": ["g"], "nonResourceAttributes": {"verb": "get", "path": "/x"}}});
    let review = sar::parse_review(&serde_json::to_vec(&body).unwrap()).unwrap();
    assert_eq!(
        engine.decide(&review.request).decision.verdict,
        Verdict::Allowed
    );
}

#[test]
fn the_action_is_the_verb() {
    let p = r#"permit(principal, action == k8s::Action::"deletecollection", resource);"#;
    assert!(allowed(
        p,
        res("a", json!({"verb": "deletecollection", "resource": "pods"}))
    ));
    assert!(!allowed(
        p,
        res("a", json!({"verb": "delete", "resource": "pods"}))
    ));
}

#[test]
fn custom_verbs_and_star_are_evaluated_not_refused() {
    let p = r#"permit(principal, action, resource is k8s::Resource) when { resource.resource == "widgets" };"#;
    assert!(allowed(
        p,
        res("a", json!({"verb": "frobnicate", "resource": "widgets"}))
    ));
    assert!(allowed(
        p,
        res(
            "a",
            json!({"verb": "*", "group": "*", "resource": "widgets"})
        )
    ));
    let listed =
        r#"permit(principal, action in [k8s::Action::"get", k8s::Action::"list"], resource);"#;
    assert!(!allowed(
        listed,
        res("a", json!({"verb": "*", "resource": "widgets"}))
    ));
}

#[test]
fn resources_are_identified_by_their_path_and_carry_attributes() {
    let p = r#"permit(principal, action, resource == k8s::Resource::"/apis/apps/v1/namespaces/prod/deployments/api/scale")
        when { resource.apiGroup == "apps" && resource.resource == "deployments" &&
               resource has version && resource.version == "v1" &&
               resource has namespace && resource.namespace == "prod" &&
               resource has name && resource.name == "api" &&
               resource has subresource && resource.subresource == "scale" };"#;
    assert!(allowed(
        p,
        res(
            "a",
            json!({"verb": "update", "group": "apps", "version": "v1", "resource": "deployments",
        "namespace": "prod", "name": "api", "subresource": "scale"})
        )
    ));
    let core = r#"permit(principal, action, resource == k8s::Resource::"/api/namespaces/alpha/configmaps/public")
        when { resource.apiGroup == "" && !(resource has version) && !(resource has subresource) };"#;
    assert!(allowed(
        core,
        res(
            "a",
            json!({"verb": "get", "resource": "configmaps", "namespace": "alpha", "name": "public"})
        )
    ));
    let cluster = r#"permit(principal, action, resource == k8s::Resource::"/api/v1/nodes") when { !(resource has namespace) && !(resource has name) };"#;
    assert!(allowed(
        cluster,
        res(
            "a",
            json!({"verb": "list", "version": "v1", "resource": "nodes"})
        )
    ));
}

#[test]
fn label_and_field_selectors_map_their_operators() {
    let p = r#"permit(principal, action, resource is k8s::Resource)
        when { resource has labelSelector && resource has fieldSelector &&
               resource.labelSelector.contains({"key": "app", "operator": "in", "values": ["a", "b"]}) &&
               resource.labelSelector.contains({"key": "t", "operator": "notin", "values": ["x"]}) &&
               resource.fieldSelector == [{"field": "spec.nodeName", "operator": "=", "value": "n1"},
                                          {"field": "metadata.name", "operator": "!=", "value": "x"}] };"#;
    assert!(allowed(
        p,
        res(
            "a",
            json!({"verb": "list", "resource": "pods",
        "labelSelector": {"requirements": [
            {"key": "app", "operator": "In", "values": ["b", "a"]},
            {"key": "t", "operator": "NotIn", "values": ["x"]},
            {"key": "e", "operator": "Exists"},
            {"key": "d", "operator": "DoesNotExist"},
            {"key": "dropped", "operator": "Gt", "values": ["1"]}]},
        "fieldSelector": {"requirements": [
            {"key": "spec.nodeName", "operator": "In", "values": ["n1"]},
            {"key": "metadata.name", "operator": "NotIn", "values": ["x"]},
            {"key": "two", "operator": "In", "values": ["a", "b"]},
            {"key": "ex", "operator": "Exists"}]}})
        )
    ));
    let none = r#"permit(principal, action, resource is k8s::Resource) when { !(resource has labelSelector) && !(resource has fieldSelector) };"#;
    assert!(allowed(
        none,
        res(
            "a",
            json!({"verb": "list", "resource": "pods",
        "labelSelector": {"rawSelector": "app=a"},
        "fieldSelector": {"requirements": [{"key": "f", "operator": "Exists"}]}})
        )
    ));
}

#[test]
fn non_resource_urls_are_identified_by_path() {
    let p = r#"permit(principal, action == k8s::Action::"get", resource == k8s::NonResourceURL::"/healthz") when { resource.path == "/healthz" };"#;
    assert!(allowed(
        p,
        json!({"user": "a", "nonResourceAttributes": {"verb": "get", "path": "/healthz"}})
    ));
}

fn impersonate(resource: &str, name: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut attrs = json!({"verb": "impersonate", "group": "", "resource": resource, "name": name});
    if let serde_json::Value::Object(m) = extra {
        for (k, v) in m {
            attrs[k] = v;
        }
    }
    json!({"user": "carol", "groups": ["support"], "resourceAttributes": attrs})
}

#[test]
fn every_impersonation_target_has_its_entity() {
    let cases = [
        (
            r#"resource == k8s::User::"dave") when { resource.name == "dave" }"#,
            impersonate("users", "dave", json!({})),
        ),
        (
            r#"resource == k8s::Node::"system:node:n1") when { resource.name == "n1" }"#,
            impersonate("users", "system:node:n1", json!({})),
        ),
        (
            r#"resource == k8s::ServiceAccount::"system:serviceaccount:ns:sa") when { resource.name == "sa" && resource.namespace == "ns" }"#,
            impersonate("serviceaccounts", "sa", json!({"namespace": "ns"})),
        ),
        (
            r#"resource == k8s::Group::"viewers") when { resource.name == "viewers" }"#,
            impersonate("groups", "viewers", json!({})),
        ),
        (
            r#"resource == k8s::PrincipalUID::"1234")"#,
            impersonate("uids", "1234", json!({"group": "authentication.k8s.io"})),
        ),
        (
            r#"resource == k8s::Extra::"scopes") when { resource.key == "scopes" && resource has value && resource.value == "view" }"#,
            impersonate(
                "userextras",
                "view",
                json!({"subresource": "scopes", "group": "authentication.k8s.io"}),
            ),
        ),
        (
            r#"resource is k8s::Resource) when { resource.resource == "widgets" }"#,
            impersonate("widgets", "w", json!({})),
        ),
    ];
    for (scope, spec) in cases {
        let p = format!("permit(principal, action == k8s::Action::\"impersonate\", {scope};");
        assert!(allowed(&p, spec.clone()), "{p}\n{spec}");
    }
    let no_value = r#"permit(principal, action == k8s::Action::"impersonate", resource is k8s::Extra) when { !(resource has value) };"#;
    assert!(allowed(
        no_value,
        impersonate(
            "userextras",
            "",
            json!({"subresource": "scopes", "group": "authentication.k8s.io"})
        )
    ));
}

/// The decision for `verb` on `attrs` under a policy whose scope and
/// condition are given; errors fail the test.
fn permits(policy: &str, attrs: serde_json::Value) -> bool {
    allowed(
        policy,
        json!({"user": "carol", "groups": ["support"], "resourceAttributes": attrs}),
    )
}

#[test]
fn legacy_targets_are_only_the_pairs_the_apiserver_sends() {
    let user = r#"permit(principal, action == k8s::Action::"impersonate", resource == k8s::User::"dave") when { !(context has mode) };"#;
    assert!(permits(
        user,
        json!({"verb": "impersonate", "resource": "users", "name": "dave"})
    ));
    // `users` in authentication.k8s.io under the legacy verb is a plain resource.
    let plain = r#"permit(principal, action == k8s::Action::"impersonate", resource is k8s::Resource) when { resource.apiGroup == "authentication.k8s.io" && resource.resource == "users" && resource has name && resource.name == "dave" };"#;
    let legacy_users_in_auth_group = json!({"verb": "impersonate", "group": "authentication.k8s.io", "resource": "users", "name": "dave"});
    assert!(permits(plain, legacy_users_in_auth_group.clone()));
    assert!(!permits(user, legacy_users_in_auth_group));
    // uids and userextras only in authentication.k8s.io; in the core group
    // they are plain resources.
    let uid = r#"permit(principal, action, resource == k8s::PrincipalUID::"1234");"#;
    assert!(permits(
        uid,
        json!({"verb": "impersonate", "group": "authentication.k8s.io", "resource": "uids", "name": "1234"})
    ));
    assert!(!permits(
        uid,
        json!({"verb": "impersonate", "resource": "uids", "name": "1234"})
    ));
    let extra = r#"permit(principal, action, resource is k8s::Extra);"#;
    assert!(!permits(
        extra,
        json!({"verb": "impersonate", "resource": "userextras", "subresource": "scopes", "name": "v"})
    ));
    // groups and serviceaccounts only in the core group.
    let group = r#"permit(principal, action, resource == k8s::Group::"viewers");"#;
    assert!(permits(
        group,
        json!({"verb": "impersonate", "resource": "groups", "name": "viewers"})
    ));
    assert!(!permits(
        group,
        json!({"verb": "impersonate", "group": "rbac.authorization.k8s.io", "resource": "groups", "name": "viewers"})
    ));
}

#[test]
fn constrained_identity_checks_map_onto_impersonate_with_a_mode() {
    let auth = |verb: &str, resource: &str, name: &str, more: serde_json::Value| {
        let mut a = json!({"verb": verb, "group": "authentication.k8s.io", "resource": resource, "name": name});
        if let serde_json::Value::Object(m) = more {
            for (k, v) in m {
                a[k] = v;
            }
        }
        a
    };
    let user = r#"permit(principal, action == k8s::Action::"impersonate", resource == k8s::User::"dave") when { context has mode && context.mode == "user-info" && resource.name == "dave" };"#;
    assert!(permits(
        user,
        auth("impersonate:user-info", "users", "dave", json!({}))
    ));
    // The forbid written for the legacy verb holds for the constrained one.
    let forbid = r#"@id("no-admin") forbid(principal, action == k8s::Action::"impersonate", resource == k8s::User::"admin");
        @id("all") permit(principal, action, resource);"#;
    let d = decide(
        forbid,
        json!({"user": "carol", "resourceAttributes": auth("impersonate:user-info", "users", "admin", json!({}))}),
    );
    assert_eq!(
        (d.verdict, d.policies.clone()),
        (Verdict::Denied, vec!["no-admin".to_owned()])
    );
    // A node name among users is a k8s::Node.
    let node_user = r#"permit(principal, action, resource == k8s::Node::"system:node:n1") when { resource.name == "n1" };"#;
    assert!(permits(
        node_user,
        auth(
            "impersonate:associated-node",
            "users",
            "system:node:n1",
            json!({})
        )
    ));
    // serviceaccounts in authentication.k8s.io are a k8s::ServiceAccount.
    let sa = r#"permit(principal, action == k8s::Action::"impersonate", resource == k8s::ServiceAccount::"system:serviceaccount:ci:builder") when { context has mode && context.mode == "serviceaccount" && resource.namespace == "ci" && resource.name == "builder" };"#;
    assert!(permits(
        sa,
        auth(
            "impersonate:serviceaccount",
            "serviceaccounts",
            "builder",
            json!({"namespace": "ci"})
        )
    ));
    // nodes: id system:node:<name>, also for associated-node's `*`.
    let star = r#"permit(principal, action == k8s::Action::"impersonate", resource == k8s::Node::"system:node:*") when { resource.name == "*" && context has mode && context.mode == "associated-node" };"#;
    assert!(permits(
        star,
        auth("impersonate:associated-node", "nodes", "*", json!({}))
    ));
    let node = r#"permit(principal, action, resource == k8s::Node::"system:node:worker-1") when { resource.name == "worker-1" };"#;
    assert!(permits(
        node,
        auth("impersonate:arbitrary-node", "nodes", "worker-1", json!({}))
    ));
    // groups, uids and userextras as for the legacy verb.
    let group = r#"permit(principal, action, resource == k8s::Group::"viewers");"#;
    assert!(permits(
        group,
        auth("impersonate:user-info", "groups", "viewers", json!({}))
    ));
    let uid = r#"permit(principal, action, resource == k8s::PrincipalUID::"1234");"#;
    assert!(permits(
        uid,
        auth("impersonate:user-info", "uids", "1234", json!({}))
    ));
    let extra = r#"permit(principal, action, resource == k8s::Extra::"scopes") when { resource.key == "scopes" && resource has value && resource.value == "view" };"#;
    assert!(permits(
        extra,
        auth(
            "impersonate:user-info",
            "userextras",
            "view",
            json!({"subresource": "scopes"})
        )
    ));
    // Identity pairs outside authentication.k8s.io are plain resources.
    let core_users = r#"permit(principal, action == k8s::Action::"impersonate", resource is k8s::Resource) when { resource.resource == "users" && context has mode };"#;
    assert!(permits(
        core_users,
        json!({"verb": "impersonate:user-info", "resource": "users", "name": "dave"})
    ));
    // An unknown mode still maps to impersonate, with the mode as sent.
    let bogus = r#"permit(principal, action == k8s::Action::"impersonate", resource == k8s::PrincipalUID::"1") when { context has mode && context.mode == "bogus" };"#;
    assert!(permits(
        bogus,
        auth("impersonate:bogus", "uids", "1", json!({}))
    ));
}

#[test]
fn impersonate_on_maps_onto_its_own_action_with_mode_and_verb() {
    let pods = r#"permit(principal, action == k8s::Action::"impersonate-on", resource is k8s::Resource) when { context.mode == "user-info" && context.verb == "list" && resource.resource == "pods" && resource has namespace && resource.namespace == "team-a" };"#;
    assert!(permits(
        pods,
        json!({"verb": "impersonate-on:user-info:list", "version": "v1", "resource": "pods", "namespace": "team-a"})
    ));
    assert!(!permits(
        pods,
        json!({"verb": "impersonate-on:user-info:delete", "version": "v1", "resource": "pods", "namespace": "team-a"})
    ));
    // On a non-resource URL.
    let version = r#"permit(principal, action == k8s::Action::"impersonate-on", resource == k8s::NonResourceURL::"/version") when { context.mode == "user-info" && context.verb == "get" };"#;
    assert!(allowed(
        version,
        json!({"user": "carol", "nonResourceAttributes": {"verb": "impersonate-on:user-info:get", "path": "/version"}})
    ));
    // The resource is the ordinary one, never an identity entity.
    let user_entity = r#"permit(principal, action, resource is k8s::User);"#;
    assert!(!permits(
        user_entity,
        json!({"verb": "impersonate-on:user-info:get", "group": "authentication.k8s.io", "resource": "users", "name": "dave"})
    ));
    // A missing part makes a custom verb: only an open action scope matches.
    let any = r#"permit(principal, action, resource is k8s::Resource) when { resource.resource == "pods" };"#;
    let on = r#"permit(principal, action == k8s::Action::"impersonate-on", resource);"#;
    for verb in [
        "impersonate-on:",
        "impersonate-on:user-info",
        "impersonate-on:user-info:",
        "impersonate-on::get",
        "impersonate:",
    ] {
        let attrs = json!({"verb": verb, "version": "v1", "resource": "pods"});
        assert!(permits(any, attrs.clone()), "{verb}");
        assert!(!permits(on, attrs.clone()), "{verb}");
        let legacy = r#"permit(principal, action == k8s::Action::"impersonate", resource);"#;
        assert!(!permits(legacy, attrs), "{verb}");
    }
}

#[test]
fn impersonating_ones_own_name_is_one_entity() {
    // The resource is the principal itself, with its groups and attributes.
    let p = r#"permit(principal, action == k8s::Action::"impersonate", resource in k8s::Group::"support")
        when { resource == principal };"#;
    assert!(allowed(p, impersonate("users", "carol", json!({}))));
    // Impersonating one's own group is also a single entity.
    let g = r#"permit(principal in k8s::Group::"support", action == k8s::Action::"impersonate", resource == k8s::Group::"support");"#;
    assert!(allowed(g, impersonate("groups", "support", json!({}))));
}

#[test]
fn quotes_in_request_strings_are_data() {
    let p = r#"permit(principal == k8s::User::"q\"uote", action, resource) when { principal.name == "q\"uote" };"#;
    assert!(allowed(p, get_pods("q\"uote")));
    let p2 =
        r#"permit(principal is k8s::User, action, resource) when { principal.name == "a\\\"b" };"#;
    assert!(allowed(p2, get_pods("a\\\"b")));
    // A name crafted to look like Cedar or JSON does not escape its string.
    let any = r#"permit(principal == k8s::User::"x", action, resource);"#;
    assert!(!allowed(any, get_pods("x\", \"admin")));
}

#[test]
fn exempt_principals_get_no_opinion_unevaluated() {
    let p = r#"permit(principal, action, resource); forbid(principal, action, resource) when { principal is k8s::User && principal.name == "system:apiserver" };"#;
    for user in [
        "system:kube-scheduler",
        "system:kube-controller-manager",
        "system:apiserver",
    ] {
        let d = decide(p, get_pods(user));
        assert!(d.exempt && d.verdict == Verdict::NoOpinion, "{user}");
        assert_eq!(
            d.status.reason, "",
            "a no-opinion reason reaches users' 403s"
        );
        assert_eq!(d.explanation(), "exempt principal");
    }
    for user in [
        "system:anonymous",
        "system:serviceaccount:a:b",
        "system:node:n",
        "alice",
    ] {
        assert_eq!(
            decide(p, get_pods(user)).verdict,
            Verdict::Allowed,
            "{user}"
        );
    }
    let off = Exemptions {
        control_plane: false,
        users: vec!["alice".into()],
    };
    assert_eq!(
        decide_with(p, get_pods("system:kube-scheduler"), off.clone()).verdict,
        Verdict::Allowed
    );
    assert!(decide_with(p, get_pods("alice"), off).exempt);
}

#[test]
fn forbid_beats_permit() {
    let p = r#"@id("allow") permit(principal, action, resource);
               @id("deny") forbid(principal, action, resource is k8s::Resource) when { resource.resource == "pods" };"#;
    let d = decide(p, get_pods("alice"));
    assert_eq!(d.verdict, Verdict::Denied);
    assert!(d.status.denied && !d.status.allowed);
    assert_eq!(d.status.reason, "cedar: denied by policy deny");
}

#[test]
fn an_erroring_forbid_denies_and_reports_the_error() {
    let p = r#"@id("allow") permit(principal, action, resource);
               @id("broken-forbid") forbid(principal, action, resource) when { 9223372036854775807 + 1 > 0 };"#;
    let d = decide(p, get_pods("alice"));
    assert_eq!(d.verdict, Verdict::Denied);
    assert_eq!(d.policies, vec!["broken-forbid"]);
    assert!(d.status.reason.contains("broken-forbid"));
    assert!(
        d.status.evaluation_error.contains("broken-forbid"),
        "{}",
        d.status.evaluation_error
    );
}

#[test]
fn an_erroring_permit_is_reported_but_does_not_decide() {
    let p = r#"@id("ok") permit(principal, action, resource);
               @id("broken-permit") permit(principal, action, resource) when { 9223372036854775807 + 1 > 0 };"#;
    let d = decide(p, get_pods("alice"));
    assert_eq!(d.verdict, Verdict::Allowed);
    assert_eq!(d.policies, vec!["ok"]);
    assert!(d.status.evaluation_error.contains("broken-permit"));
    let only_broken = r#"@id("broken-permit") permit(principal, action, resource) when { 9223372036854775807 + 1 > 0 };"#;
    let d = decide(only_broken, get_pods("alice"));
    assert_eq!(d.verdict, Verdict::NoOpinion);
    assert!(!d.status.evaluation_error.is_empty());
}

#[test]
fn reasons_name_determining_policies_sorted() {
    let p = r#"@id("b") permit(principal, action, resource); @id("a") permit(principal, action, resource);"#;
    assert_eq!(
        decide(p, get_pods("x")).status.reason,
        "cedar: allowed by policies a, b"
    );
    let none = r#"@id("a") permit(principal == k8s::User::"nobody", action, resource);"#;
    let d = decide(none, get_pods("x"));
    assert_eq!(
        d.status.reason, "",
        "a no-opinion reason reaches users' 403s"
    );
    assert_eq!(d.explanation(), "no policy matched");
}

#[test]
fn ids_come_from_annotations_or_path_and_position() {
    let s = load(&[
        ("a/x.cedar", "permit(principal, action, resource);\n@id(\"named\") permit(principal, action, resource);\npermit(principal, action, resource);"),
        ("b.cedar", "forbid(principal, action, resource) when { false };"),
    ])
    .unwrap();
    let mut ids: Vec<&str> = s.policies.iter().map(|p| p.id.as_str()).collect();
    ids.sort();
    assert_eq!(
        ids,
        vec!["a/x.cedar#0", "a/x.cedar#2", "b.cedar#0", "named"]
    );
}

#[test]
fn duplicate_ids_reject_the_whole_set() {
    let e = load(&[
        (
            "a.cedar",
            "@id(\"same\") permit(principal, action, resource);",
        ),
        (
            "b.cedar",
            "\n\n@id(\"same\") permit(principal, action, resource);",
        ),
    ])
    .err()
    .expect("duplicate ids must not load");
    let text = e.to_string();
    assert!(
        text.contains("b.cedar:3:1") && text.contains("duplicate policy id \"same\""),
        "{text}"
    );
}

#[test]
fn parse_and_type_errors_name_file_line_and_column() {
    let e = load(&[
        ("ok.cedar", "permit(principal, action, resource);"),
        (
            "sub/bad.cedar",
            "permit(principal, action, resource)\n  when { resource.nope == 1 };",
        ),
    ])
    .err()
    .unwrap();
    let text = e.to_string();
    assert!(text.contains("sub/bad.cedar:2:"), "{text}");
    let e = load(&[("syntax.cedar", "permit(principal, action resource);")])
        .err()
        .unwrap();
    assert!(e.to_string().contains("syntax.cedar:1:"), "{e}");
    let e = load(&[("type.cedar", "permit(principal, action, resource is k8s::Resource) when { resource.namespace == \"x\" };")]).err().unwrap();
    assert!(
        e.to_string().contains("type.cedar:1:") && e.to_string().contains("namespace"),
        "{e}"
    );
}

#[test]
fn non_cedar_and_hidden_files_are_ignored_and_empty_sets_refused() {
    let s = load(&[
        ("p.cedar", "permit(principal, action, resource);"),
        ("README.md", "not cedar"),
        ("..data/p.cedar", "this would not parse"),
    ])
    .unwrap();
    assert_eq!(s.policies.len(), 1);
    assert!(matches!(
        load(&[("README.md", "x")]),
        Err(LoadError::Empty(_))
    ));
}

#[test]
fn the_go_proof_of_concept_demo_policies_validate_against_our_schema() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/anchors/cedar-access-control-for-k8s/demo-authorization-policy.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut files = Vec::new();
    let docs = cedar_authorizer::yaml::documents::<serde_json::Value>(&text).unwrap();
    for (i, doc) in docs.iter().enumerate() {
        if let Some(content) = doc.value["spec"]["content"].as_str() {
            files.push((format!("demo-{i}.cedar"), content.to_owned()));
        }
    }
    assert!(
        files.len() >= 4,
        "expected the demo policies, found {}",
        files.len()
    );
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    let s = load(&refs).unwrap_or_else(|e| panic!("{e}"));
    assert!(s.policies.len() >= files.len());
}

#[test]
fn our_schema_is_a_superset_of_the_go_schema() {
    // Every entity type, attribute and action of the Go schema is in ours.
    let go =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(
            "../shared/anchors/cedar-access-control-for-k8s/k8s-authorization.cedarschema.json",
        ))
        .unwrap();
    let go: serde_json::Value = serde_json::from_str(&go).unwrap();
    let ours = cedar_authorizer::policy::BUILTIN_SCHEMA;
    let (schema, _) = cedar_policy::Schema::from_cedarschema_str(ours).unwrap();
    let ns = &go["k8s"];
    for (name, def) in ns["entityTypes"].as_object().unwrap() {
        let attrs = def["shape"]["attributes"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for (attr, ty) in attrs {
            // Each attribute with its optionality must appear in our schema text.
            let optional = ty["required"] == json!(false);
            let needle = format!("\"{attr}\"{}:", if optional { "?" } else { "" });
            let block_start = ours
                .find(&format!("entity {name}"))
                .unwrap_or_else(|| panic!("entity {name} missing"));
            let block = &ours[block_start..ours[block_start..].find("};").unwrap() + block_start];
            assert!(block.contains(&needle), "{name}.{attr} ({needle}) missing");
        }
    }
    for (action, def) in ns["actions"].as_object().unwrap() {
        let uid: cedar_policy::EntityUid = format!("k8s::Action::\"{action}\"").parse().unwrap();
        assert!(
            schema.actions().any(|a| a == &uid),
            "action {action} missing"
        );
        for r in def["appliesTo"]["resourceTypes"].as_array().unwrap() {
            let block_start = ours.find(&format!("action \"{action}\"")).unwrap();
            let block = &ours[block_start..ours[block_start..].find("};").unwrap() + block_start];
            assert!(block.contains(r.as_str().unwrap()), "{action} on {r}");
        }
    }
}
