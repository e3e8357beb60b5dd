#!/usr/bin/python3
"""ks_bench.py - Keystone side of bench/keystone/run.sh (standard library only,
Debian's /usr/bin/python3).  ENVFILE is the keystone.env written by
tests/e2e/keystone/ks-start.sh (ks-seed.py made domain/project ims and the
member role).

  ks_bench.py ENVFILE users FIRST N
      creates Keystone users u<FIRST>..u<FIRST+N-1> (u%07d, the names of
      bench/hss/hss_bench.h, password pw-<i>) in domain ims with `member` on
      project ims
  ks_bench.py ENVFILE tokens FIRST N PER [C]
      issues PER password tokens scoped to project ims for each of those users
      (C requests at once, default 4) and prints "u<i>;<token>;" lines, user by
      user (a sipp injection file body)
  ks_bench.py ENVFILE validate TOKFILE C [system|project]
      Keystone's own validation rate: GET /v3/auth/tokens?nocatalog (what
      imscloud sends; X-Auth-Token: the service user's token, system-scoped
      by default as imscloud's without [keystone] project, X-Subject-Token:
      each token of TOKFILE's second column once) from C threads; prints
      "ok=N fail=N seconds=S rate=R"

Tokens never go to stderr or a log."""
import json
import sys
import threading
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
            with urllib.request.urlopen(req, timeout=60) as r:
                raw = r.read()
                return r.status, r.headers, (json.loads(raw) if raw else None)
        except urllib.error.HTTPError as e:
            if e.code in ok:
                return e.code, e.headers, None
            if e.code >= 500 and attempt < 4:  # SQLite hiccup: retry
                time.sleep(0.5)
                continue
            raise SystemExit("%s %s -> %d" % (method, path, e.code))
    raise SystemExit("unreachable")


def password_token(user, domain, password, scope):
    body = {"auth": {"identity": {"methods": ["password"],
                                  "password": {"user": {"name": user, "domain": domain,
                                                        "password": password}}},
                     "scope": scope}}
    _, h, _ = call("POST", "/auth/tokens", body)
    return h["X-Subject-Token"]


def admin():
    return password_token("admin", {"id": "default"}, ENV["KS_ADMIN_PASSWORD"],
                          {"project": {"name": "admin", "domain": {"id": "default"}}})


def ims_scope():
    return {"project": {"name": ENV["KS_IMS_PROJECT"], "domain": {"name": ENV["KS_IMS_DOMAIN"]}}}


def parallel(items, fn, conc):
    """fn(item) for every item from conc threads; results in item order."""
    out = [None] * len(items)
    nxt = [0]
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= len(items):
                return
            out[i] = fn(items[i])

    ts = [threading.Thread(target=worker) for _ in range(conc)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def users(first, n):
    tok = admin()
    _, _, b = call("GET", "/domains?name=" + ENV["KS_IMS_DOMAIN"], token=tok)
    dom = b["domains"][0]["id"]
    proj, member = ENV["KS_IMS_PROJECT_ID"], ENV["KS_MEMBER_ROLE_ID"]

    def one(i):
        _, _, u = call("POST", "/users", {"user": {"name": "u%07d" % i, "domain_id": dom,
                                                   "password": "pw-%d" % i}}, tok)
        call("PUT", "/projects/%s/users/%s/roles/%s" % (proj, u["user"]["id"], member), token=tok)

    parallel(list(range(first, first + n)), one, 4)


def tokens(first, n, per, conc):
    dom = {"name": ENV["KS_IMS_DOMAIN"]}
    jobs = [i for i in range(first, first + n) for _ in range(per)]
    toks = parallel(jobs, lambda i: password_token("u%07d" % i, dom, "pw-%d" % i, ims_scope()),
                    conc)
    for i, t in zip(jobs, toks):
        print("u%07d;%s;" % (i, t))


def validate(path, conc, scope):
    # the service token as imscloud gets it: system scope when [keystone] has
    # no project (src/keystone/keystone.c), else the service project
    if scope == "system":
        sc = {"system": {"all": True}}
    else:
        sc = {"project": {"name": ENV["KS_SVC_PROJECT"], "domain": {"id": "default"}}}
    svc = password_token(ENV["KS_SVC_USER"], {"name": ENV["KS_SVC_DOMAIN"]},
                         ENV["KS_SVC_PASSWORD"], sc)
    with open(path) as f:
        toks = [ln.split(";")[1] for ln in f if ";" in ln]
    res = {"ok": 0, "fail": 0}
    lock = threading.Lock()

    def one(t):
        code, _, _ = call("GET", "/auth/tokens?nocatalog", token=svc, headers={"X-Subject-Token": t},
                          ok=(200, 404))
        with lock:
            res["ok" if code == 200 else "fail"] += 1

    t0 = time.monotonic()
    parallel(toks, one, conc)
    dt = time.monotonic() - t0
    print("ok=%d fail=%d seconds=%.3f rate=%.1f" % (res["ok"], res["fail"], dt, res["ok"] / dt))


def main():
    cmd = sys.argv[2]
    if cmd == "users":
        users(int(sys.argv[3]), int(sys.argv[4]))
    elif cmd == "tokens":
        tokens(int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]),
               int(sys.argv[6]) if len(sys.argv) > 6 else 4)
    elif cmd == "validate":
        validate(sys.argv[3], int(sys.argv[4]), sys.argv[5] if len(sys.argv) > 5 else "system")
    else:
        raise SystemExit("usage: see the docstring")


main()
