#!/usr/bin/env python3
"""Writes N RBAC-shaped Cedar policies into DIR, the shape a converted RBAC
has: a group, a verb list, resource conditions; about ten policies per
group, a thousand per file. Mirrors benches/engine.rs so the load numbers
and the in-process bench describe the same sets. One guardrail forbid is
added so every request also meets a forbid.

usage: gen_policies.py N DIR
"""
import os
import sys

VERBS = [
    ["get", "list", "watch"],
    ["create", "update", "patch", "delete"],
    ["get"],
]
RESOURCES = ["pods", "deployments", "configmaps", "services", "secrets", "jobs"]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    n, out = int(sys.argv[1]), sys.argv[2]
    os.makedirs(out, exist_ok=True)
    groups = max(n // 10, 1)
    chunk = []
    for i in range(n):
        actions = ", ".join(f'k8s::Action::"{v}"' for v in VERBS[i % len(VERBS)])
        chunk.append(
            f'@id("rbac-{i}")\n'
            f"permit (\n"
            f'  principal in k8s::Group::"group-{i % groups}",\n'
            f"  action in [{actions}],\n"
            f"  resource is k8s::Resource\n"
            f")\n"
            f'when {{ resource.apiGroup == "" && resource.resource == "{RESOURCES[i % len(RESOURCES)]}"'
            f' && resource has namespace && resource.namespace == "ns-{i % 50}" }};\n\n'
        )
        if i % 1000 == 999 or i == n - 1:
            with open(os.path.join(out, f"rbac-{i // 1000:05}.cedar"), "w") as f:
                f.write("".join(chunk))
            chunk = []
    with open(os.path.join(out, "guardrail.cedar"), "w") as f:
        f.write(
            '@id("forbid-kube-system-secrets")\n'
            "forbid (principal, action, resource is k8s::Resource)\n"
            'when { resource.resource == "secrets" && resource has namespace && resource.namespace == "kube-system" }\n'
            'unless { principal in k8s::Group::"platform" };\n'
        )


if __name__ == "__main__":
    main()
