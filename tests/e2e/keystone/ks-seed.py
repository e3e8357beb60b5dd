#!/usr/bin/python3
"""ks-seed.py ENVFILE - seeds a fresh Keystone for the imscloud client tests
over its REST API (one process: much faster than one `openstack` run per
object) and prints KEY=VALUE lines for the env file.

Creates:
  - user ims-core (domain Default, random password): role `service` on project
    `service` and the system role `reader` (validation, role assignments and
    credentials need both, see docs/internals/keystone.md), plus an
    application credential of ims-core delegating `service`;
  - domain ims, project ims, user alice (member on ims) with an `ims-digest`
    credential whose blob is JSON;
  - user bob (member on ims) with a TOTP credential and MFA rules
    [[password, totp]]: a password alone gets no token.
Standard library only (Debian's /usr/bin/python3)."""
import base64
import json
import os
import sys
import time
import urllib.error
import urllib.request


def load_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.strip().partition("=")
            if k:
                env[k] = v
    return env


ENV = load_env(sys.argv[1])
URL = ENV["KS_URL"]


def call(method, path, body=None, token=None, expect=(200, 201, 204)):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(URL + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("X-Auth-Token", token)
    for attempt in range(5):
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                raw = r.read()
                return r.status, r.headers, (json.loads(raw) if raw else None)
        except urllib.error.HTTPError as e:
            if e.code in expect:
                return e.code, e.headers, None
            if e.code >= 500 and attempt < 4:  # SQLite hiccup: retry
                time.sleep(0.5)
                continue
            raise SystemExit("%s %s -> %d %s" % (method, path, e.code, e.read()[:300]))
    raise SystemExit("unreachable")


def password_token(user, domain, password, scope):
    body = {"auth": {"identity": {"methods": ["password"],
                                  "password": {"user": {"name": user, "domain": {"name": domain},
                                                        "password": password}}},
                     "scope": scope}}
    _, h, _ = call("POST", "/auth/tokens", body)
    return h["X-Subject-Token"]


def create(path, key, obj, token):
    _, _, b = call("POST", path, {key: obj}, token)
    return b[key]


def role_id(name, token):
    _, _, b = call("GET", "/roles?name=" + name, token=token)
    if b["roles"]:
        return b["roles"][0]["id"]
    return create("/roles", "role", {"name": name}, token)["id"]


def main():
    admin = password_token("admin", "Default", ENV["KS_ADMIN_PASSWORD"],
                           {"project": {"name": "admin", "domain": {"id": "default"}}})
    out = {}
    r_service = role_id("service", admin)
    r_reader = role_id("reader", admin)
    r_member = role_id("member", admin)

    # the IMS core's service account
    svc_pw = base64.b32encode(os.urandom(15)).decode().lower()
    p_service = create("/projects", "project", {"name": "service", "domain_id": "default"}, admin)
    core = create("/users", "user", {"name": "ims-core", "domain_id": "default",
                                     "password": svc_pw}, admin)
    call("PUT", "/projects/%s/users/%s/roles/%s" % (p_service["id"], core["id"], r_service),
         token=admin)
    call("PUT", "/system/users/%s/roles/%s" % (core["id"], r_reader), token=admin)

    # the IMS tenant and its users
    d_ims = create("/domains", "domain", {"name": "ims"}, admin)
    p_ims = create("/projects", "project", {"name": "ims", "domain_id": d_ims["id"]}, admin)
    alice = create("/users", "user", {"name": "alice", "domain_id": d_ims["id"],
                                      "password": "alicepw"}, admin)
    bob = create("/users", "user", {"name": "bob", "domain_id": d_ims["id"],
                                    "password": "bobpw"}, admin)
    for u in (alice, bob):
        call("PUT", "/projects/%s/users/%s/roles/%s" % (p_ims["id"], u["id"], r_member),
             token=admin)

    blob = json.dumps({"impi": "alice@ims.test", "realm": "ims.test",
                       "ha1": "0123456789abcdef0123456789abcdef"})
    cred = create("/credentials", "credential", {"type": "ims-digest", "user_id": alice["id"],
                                                "project_id": p_ims["id"], "blob": blob}, admin)

    totp = base64.b32encode(os.urandom(20)).decode().rstrip("=")
    create("/credentials", "credential", {"type": "totp", "user_id": bob["id"], "blob": totp},
           admin)
    call("PATCH", "/users/" + bob["id"],
         {"user": {"options": {"multi_factor_auth_rules": [["password", "totp"]],
                               "multi_factor_auth_enabled": True}}}, admin)

    # an application credential of ims-core (needs its own project token)
    core_tok = password_token("ims-core", "Default", svc_pw,
                              {"project": {"name": "service", "domain": {"id": "default"}}})
    ac = create("/users/%s/application_credentials" % core["id"], "application_credential",
                {"name": "ims-core-test", "roles": [{"name": "service"}]}, core_tok)

    out.update({
        "KS_SVC_USER": "ims-core", "KS_SVC_PASSWORD": svc_pw, "KS_SVC_DOMAIN": "Default",
        "KS_SVC_PROJECT": "service", "KS_SVC_USER_ID": core["id"],
        "KS_AC_ID": ac["id"], "KS_AC_SECRET": ac["secret"],
        "KS_IMS_DOMAIN": "ims", "KS_IMS_PROJECT": "ims", "KS_IMS_PROJECT_ID": p_ims["id"],
        "KS_ALICE_ID": alice["id"], "KS_ALICE_PASSWORD": "alicepw",
        "KS_BOB_ID": bob["id"], "KS_BOB_PASSWORD": "bobpw", "KS_BOB_TOTP": totp,
        "KS_DIGEST_CRED_ID": cred["id"],
        "KS_MEMBER_ROLE_ID": r_member, "KS_READER_ROLE_ID": r_reader,
    })
    for k, v in out.items():
        print("%s=%s" % (k, v))


main()
