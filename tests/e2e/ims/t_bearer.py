#!/usr/bin/python3
"""t_bearer.py - Keystone side of tests/e2e/ims/t_bearer.sh (standard library
only, Debian's /usr/bin/python3).  ENVFILE is the Keystone fixture's
keystone.env (tests/e2e/keystone/ks-start.sh, ks-seed.py).

  t_bearer.py ENVFILE users
      creates (once) in domain/project ims: role mfa_required; user nina
      (reader only: no member role on the IMS project); user tom (member and
      mfa_required, a TOTP credential, no Keystone MFA rule so a password-only
      token exists); prints KEY=VALUE lines (KB_TOM_TOTP=...)
  t_bearer.py ENVFILE token USER PASSWORD [TOTP_SECRET]
      prints a token scoped to project ims (password, or password + totp)
  t_bearer.py ENVFILE appcred USER PASSWORD
      creates an application credential of USER (project ims) and prints a
      token issued for it (methods: application_credential)
  t_bearer.py ENVFILE revoke TOKEN
      DELETE /v3/auth/tokens (admin)"""
import base64
import hashlib
import hmac
import json
import os
import struct
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


def call(method, path, body=None, token=None, headers=None, ok=(200, 201, 204)):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(URL + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("X-Auth-Token", token)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    for attempt in range(5):
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                raw = r.read()
                return r.status, r.headers, (json.loads(raw) if raw else None)
        except urllib.error.HTTPError as e:
            if e.code in ok:
                return e.code, e.headers, None
            if e.code >= 500 and attempt < 4:  # SQLite hiccup: retry
                time.sleep(0.5)
                continue
            raise SystemExit("%s %s -> %d %s" % (method, path, e.code, e.read()[:300]))
    raise SystemExit("unreachable")


def totp(secret, t=None):
    """RFC 6238: HMAC-SHA-1, 30 s steps, 6 digits (Keystone's totp method)."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    counter = int((t if t is not None else time.time()) // 30)
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    code = (struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF) % 1000000
    return "%06d" % code


def ims_scope():
    return {"project": {"name": ENV["KS_IMS_PROJECT"], "domain": {"name": ENV["KS_IMS_DOMAIN"]}}}


def issue(identity, scope):
    auth = {"identity": identity}
    if scope:
        auth["scope"] = scope  # an application credential carries its own
    _, h, _ = call("POST", "/auth/tokens", {"auth": auth})
    return h["X-Subject-Token"]


def user_token(user, password, secret=None):
    ident = {"methods": ["password"],
             "password": {"user": {"name": user, "domain": {"name": ENV["KS_IMS_DOMAIN"]},
                                   "password": password}}}
    if secret:
        ident["methods"].append("totp")
        ident["totp"] = {"user": {"name": user, "domain": {"name": ENV["KS_IMS_DOMAIN"]},
                                  "passcode": totp(secret)}}
    return issue(ident, ims_scope())


def admin():
    ident = {"methods": ["password"],
             "password": {"user": {"name": "admin", "domain": {"id": "default"},
                                   "password": ENV["KS_ADMIN_PASSWORD"]}}}
    return issue(ident, {"project": {"name": "admin", "domain": {"id": "default"}}})


def find_or_create(path, key, query, obj, tok):
    _, _, b = call("GET", "%s?%s" % (path, query), token=tok)
    if b[key + "s"]:
        return b[key + "s"][0]
    _, _, b = call("POST", path, {key: obj}, tok)
    return b[key]


def users():
    tok = admin()
    _, _, b = call("GET", "/domains?name=" + ENV["KS_IMS_DOMAIN"], token=tok)
    dom = b["domains"][0]["id"]
    proj = ENV["KS_IMS_PROJECT_ID"]
    mfa = find_or_create("/roles", "role", "name=mfa_required", {"name": "mfa_required"}, tok)
    out = {}
    nina = find_or_create("/users", "user", "name=nina&domain_id=" + dom,
                          {"name": "nina", "domain_id": dom, "password": "ninapw"}, tok)
    call("PUT", "/projects/%s/users/%s/roles/%s" % (proj, nina["id"], ENV["KS_READER_ROLE_ID"]),
         token=tok)
    tom = find_or_create("/users", "user", "name=tom&domain_id=" + dom,
                         {"name": "tom", "domain_id": dom, "password": "tompw"}, tok)
    for r in (ENV["KS_MEMBER_ROLE_ID"], mfa["id"]):
        call("PUT", "/projects/%s/users/%s/roles/%s" % (proj, tom["id"], r), token=tok)
    _, _, b = call("GET", "/credentials?type=totp&user_id=" + tom["id"], token=tok)
    if b["credentials"]:
        secret = b["credentials"][0]["blob"]
    else:
        secret = base64.b32encode(os.urandom(20)).decode().rstrip("=")
        call("POST", "/credentials", {"credential": {"type": "totp", "user_id": tom["id"],
                                                     "blob": secret}}, tok)
    out.update({"KB_NINA_ID": nina["id"], "KB_TOM_ID": tom["id"], "KB_TOM_TOTP": secret})
    for k, v in out.items():
        print("%s=%s" % (k, v))


def appcred(user, password):
    tok = user_token(user, password)
    _, _, b = call("GET", "/auth/tokens", token=tok, headers={"X-Subject-Token": tok})
    uid = b["token"]["user"]["id"]
    _, _, b = call("POST", "/users/%s/application_credentials" % uid,
                   {"application_credential": {"name": "kb-%d" % int(time.time() * 1000)}}, tok)
    ac = b["application_credential"]
    return issue({"methods": ["application_credential"],
                  "application_credential": {"id": ac["id"], "secret": ac["secret"]}}, None)


def main():
    cmd = sys.argv[2]
    if cmd == "users":
        users()
    elif cmd == "token":
        print(user_token(sys.argv[3], sys.argv[4], sys.argv[5] if len(sys.argv) > 5 else None))
    elif cmd == "appcred":
        print(appcred(sys.argv[3], sys.argv[4]))
    elif cmd == "revoke":
        call("DELETE", "/auth/tokens", token=admin(), headers={"X-Subject-Token": sys.argv[3]})
    else:
        raise SystemExit("usage: see the docstring")


main()
