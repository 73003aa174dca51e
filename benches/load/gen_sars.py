#!/usr/bin/env python3
"""Prints COUNT distinct SubjectAccessReview bodies, one compact JSON
object a line: the pool sar.lua draws from. Users, groups, verbs,
resources and namespaces vary so that no two bodies are equal (every
body is a distinct decision-cache key) and the answers mix allowed and
no-opinion against the sets of gen_policies.py.

usage: gen_sars.py COUNT > sars.jsonl
"""
import json
import sys

VERBS = ["get", "list", "watch", "create", "update", "delete", "patch"]
RESOURCES = ["pods", "deployments", "configmaps", "services", "secrets", "jobs", "events"]


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    count = int(sys.argv[1])
    for i in range(count):
        sar = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": f"user-{i}",
                "groups": [f"group-{i % 1000}", f"group-{(i * 7) % 1000}", "system:authenticated"],
                "uid": f"uid-{i}",
                "extra": {"scopes": ["read"]},
                "resourceAttributes": {
                    "verb": VERBS[i % len(VERBS)],
                    "version": "v1",
                    "resource": RESOURCES[(i // 7) % len(RESOURCES)],
                    "namespace": f"ns-{i % 50}",
                },
            },
        }
        print(json.dumps(sar, separators=(",", ":")))


if __name__ == "__main__":
    main()
