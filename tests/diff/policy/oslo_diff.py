#!/usr/bin/python3
"""Differential test: imscloud's policy engine against the real oslo.policy.

Generates seeded random policies (JSON or YAML text, rules built from every
construct of the language plus malformed ones), credentials and targets;
runs each case through policy_cli (the C engine) and through
oslo_policy.policy.Enforcer.enforce(rule, target, creds) (Debian's
python3-oslo.policy, so run it with /usr/bin/python3); every verdict must
agree.  An exception out of oslo's enforce counts as deny (the service
would fail the request); a policy oslo cannot load must be refused by ours.

  oslo_diff.py --cli build/tests/diff/policy/policy_cli [--seed 5] [--cases 3000]

Exit 0 when all agree, 1 on any mismatch (each printed), 77 when
oslo.policy is not installed.
"""
import argparse
import json
import logging
import os
import random
import subprocess
import sys
import tempfile
import warnings

try:
    import yaml
    from oslo_config import cfg
    from oslo_policy import policy
except ImportError as e:  # pragma: no cover
    print("skipped: oslo.policy not importable (%s); apt-get install python3-oslo.policy" % e)
    sys.exit(77)

logging.disable(logging.CRITICAL)  # oslo logs every unparsable rule
warnings.simplefilter("ignore")

ROLES = ["admin", "member", "reader", "Member", "ADMIN", "service", "Reader"]
METHODS = ["password", "totp", "token", "application_credential", "TOTP"]
IDS = ["u1", "u2", "p1", "p2", "d1", "", "True", "False", "1", "-1", "x y"]
TKEYS = ["target.project_id", "target.user_id", "project_id", "user_id", "target.owner",
         "target.domain_id", "owner"]
CRED_FIELDS = ["user_id", "project_id", "domain_id", "user_domain_id", "project_domain_id",
               "roles", "methods", "is_admin"]
# kinds of a generic check: credentials, literals, names oslo never finds,
# and ones where oslo raises (user_id.x is a str indexed by a str, "" and
# keywords are SyntaxErrors)
KINDS = CRED_FIELDS * 3 + [
    "True", "False", "None", "'u1'", '"p1"', "'True'", "1", "-1", "+1", "0", "00", "-0", "1_0",
    "unknown", "tenant", "user", "tenant-id", "roles.name", "user_id.x", "methods.x",
    "is_admin.x", "True.x", "", "not", "if", "a..b", "user_id.", "x.True", "role", "ROLE",
    "Rule", "01", "1a", "1_", "system_scope", "_", "a_b.c",
    # expressions (ValueError: looked up, never found) and syntax errors
    "a$b", "a?b", "a;b", "a!b", "a!=b", "a#b", "a-b", "a[0]", "a(b)", "a'b", "a\\b", "a@b",
    "a,b", "a==b", "a<b", "~a", "-x", "a^b", "a|b", "a&b", "a%b", "a*b", "a/b", "a//b", "a**b",
    "a>>b", "a\u200bb",  # not "r\u00f4le": a Unicode name to oslo, an error (deny) to us
]


def rand_value(r):
    """The right side of a check: text, %(key)s substitutions, quirks."""
    c = r.random()
    if c < 0.35:
        return r.choice(IDS + ROLES + METHODS + ["True", "False", "None"])
    if c < 0.65:
        return "%%(%s)s" % r.choice(TKEYS + ["missing", "target.missing"])
    if c < 0.75:
        return r.choice(["p", "u", "x"]) + "%%(%s)s" % r.choice(TKEYS)
    if c < 0.8:
        return "%%(%s)s%%(%s)s" % (r.choice(TKEYS), r.choice(TKEYS))
    if c < 0.85:
        return r.choice(["'u1'", '"p1"', "'admin'"])
    return r.choice(["%%", "100%%", "%(user_id)d", "%(missing)d", "%", "a%", "%(user_id",
                     "%s", "%(project_id)s%", "%(missing)s%", "%(a(b)c)s", ""])


def rand_check(r, names):
    c = r.random()
    if c < 0.06:
        return r.choice(["@", "!"])
    if c < 0.25:
        return "role:" + r.choice(ROLES + ["%(target.owner)s", "%(missing)s", "adm%(x)s"])
    if c < 0.37:
        return "rule:" + r.choice(names + ["default", "missing"])
    if c < 0.40:
        return r.choice(["nocolon", "role", "'quoted'", '"q"', "http://x", "methods:totp'"])
    if c < 0.50:
        return "methods:" + r.choice(METHODS)
    if c < 0.55:
        return "is_admin:" + r.choice(["True", "False", "true", "1"])
    return r.choice(KINDS) + ":" + rand_value(r)


def kw(r, word):
    return r.choice([word, word, word, word.upper(), word.capitalize()])


def rand_expr(r, names, depth):
    c = r.random()
    if depth <= 0 or c < 0.3:
        return rand_check(r, names)
    if c < 0.45:
        return kw(r, "not") + " " + rand_expr(r, names, depth - 1)
    if c < 0.6:
        return "(" + rand_expr(r, names, depth - 1) + ")"
    n = r.randint(2, 4)
    parts = [rand_expr(r, names, depth - 1) for _ in range(n)]
    out = parts[0]
    for p in parts[1:]:
        out += " " + kw(r, r.choice(["and", "or"])) + " " + p
    return out


def mangle(r, text):
    """Malformed rules: oslo's parser quirks."""
    c = r.random()
    if c < 0.2:
        return text + " " + r.choice(["and", "or", "not", "(", ")", "'x'"])
    if c < 0.35:
        return r.choice(["(", ")", "not", "and", "'x'", "   ", "\t", "( )", "()"])
    if c < 0.5:
        return "(" + text
    if c < 0.65:
        return text + ")"
    if c < 0.8:  # other white space, ASCII and Unicode (oslo splits on \s)
        ws = r.choice(["\t", "\n", "\x1c", "\x1f", "\x0b", "\u00a0", "\u2003", "\u3000",
                       "\x85", "\u2028", "\u200b", "\ufeff"])
        return text.replace(" ", ws, r.randint(1, 3))
    return "((" + text + "))"


def rand_rule(r, names):
    c = r.random()
    if c < 0.04:
        return ""
    if c < 0.06:
        return None
    text = rand_expr(r, names, r.randint(0, 4))
    if r.random() < 0.15:
        text = mangle(r, text)
    return text


YAML_RAW = ["yes", "no", "1", "1.5", "~", "null", "", "role:admin", "rule:r1", "'@'", '"!"',
            "2001-12-14", "0x1f", "1:20", "on", "role:admin or role:member", "[role:a]",
            "{a: b}", "&a x", "*a", "!!str yes", "!!int 1", "'role:a' 'b'", "- a", "methods:totp",
            "!", "! role:a", "! 'role:a'", "!!null ''", "role:a # comment", "'it''s'", "|\n  @",
            ">-\n  role:a\n  or role:b", "\"role:a\\tor\\u00a0@\""]


def policy_text(r, rules):
    c = r.random()
    if c < 0.4:
        return json.dumps(rules)
    if c < 0.85 or not rules:
        return yaml.safe_dump(rules, default_flow_style=r.random() < 0.2)
    # hand-written YAML with plain scalars: PyYAML's typing of them
    lines = []
    for k, v in rules.items():
        if r.random() < 0.5 or v is None:
            lines.append("%s: %s" % (json.dumps(k), r.choice(YAML_RAW)))
        else:
            lines.append("%s: %s" % (json.dumps(k), json.dumps(v)))
    return "\n".join(lines) + "\n"


def rand_case(r):
    names = ["r%d" % i for i in range(r.randint(1, 5))]
    rules = {}
    for n in names:
        rules[n] = rand_rule(r, names)
    if r.random() < 0.4:
        rules["default"] = rand_rule(r, names)
    creds = {
        "roles": r.sample(ROLES, r.randint(0, 3)),
        "methods": r.sample(METHODS, r.randint(0, 2)),
        "is_admin": r.random() < 0.3,
    }
    for f in ("user_id", "project_id", "domain_id", "user_domain_id", "project_domain_id"):
        if r.random() < 0.7:
            creds[f] = r.choice(IDS)
    target = {k: r.choice(IDS) for k in TKEYS if r.random() < 0.5}
    rule = r.choice(names + ["default", "missing"])
    return {"policy": policy_text(r, rules), "rule": rule, "creds": creds, "target": target}


def in_subset(text):
    """Whether text is in the subset our loader accepts: one mapping of
    string names to string (or null) rules, no YAML anchors or aliases.
    Outside it, refusing the file is intended (docs/policy.md): oslo reads
    list rules, and reads `r: no` (YAML false) as "always allow"."""
    try:
        data = yaml.safe_load(text)
        for ev in yaml.parse(text, Loader=yaml.SafeLoader):
            if getattr(ev, "anchor", None) or isinstance(ev, yaml.AliasEvent):
                return False
    except Exception:
        return True  # oslo cannot load it either: must match
    if not data:
        return True
    if not isinstance(data, dict):
        return True
    return all(isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in data.items())


def shipped_case(r, text, names):
    """A case on the shipped etc/policy.yaml: realistic credentials."""
    creds = {
        "user_id": r.choice(["u1", "u2"]),
        "roles": r.sample(["admin", "member", "reader", "Member"], r.randint(0, 3)),
        "methods": r.sample(["password", "totp", "application_credential"], r.randint(1, 2)),
        "is_admin": r.random() < 0.1,
    }
    if r.random() < 0.8:
        creds["project_id"] = r.choice(["p1", "p2"])
    target = {k: r.choice(["p1", "p2", "u1"]) for k in ("target.project_id", "target.user_id")
              if r.random() < 0.7}
    return {"policy": text, "rule": r.choice(names + ["ims:unknown"]), "creds": creds,
            "target": target}


def checker_verdicts(case, tmp):
    """Every rule of the case's policy for the case's credentials and
    target, through one oslopolicy-checker run without --rule (it prints
    "passed: RULE" or "failed: RULE" for each): {rule: allow|deny}."""
    cmd = checker_cmd(case, tmp)
    res = subprocess.run(cmd, capture_output=True, text=True)
    out = {}
    for line in res.stdout.splitlines():
        verdict, _, rule = line.partition(": ")
        if verdict in ("passed", "failed") and rule:
            out[rule] = "allow" if verdict == "passed" else "deny"
    return out


def checker_cmd(case, tmp):
    """oslopolicy-checker's command line for a case (without --rule); it
    builds its credentials from a Keystone token document."""
    c = case["creds"]
    token = {"methods": c["methods"], "roles": [{"name": x} for x in c["roles"]],
             "user": {"id": c["user_id"]}}
    if "project_id" in c:
        token["project"] = {"id": c["project_id"]}
    target = {}
    for k, v in case["target"].items():  # nest "target.project_id" again
        d = target
        parts = k.split(".")
        for part in parts[:-1]:
            d = d.setdefault(part, {})
        d[parts[-1]] = v
    files = {}
    docs = (("policy.yaml", case["policy"]), ("access.json", json.dumps({"token": token})),
            ("target.json", json.dumps(target)))
    for name, data in docs:
        files[name] = os.path.join(tmp, name)
        with open(files[name], "w") as f:
            f.write(data)
    cmd = ["/usr/bin/oslopolicy-checker", "--policy", files["policy.yaml"],
           "--access", files["access.json"], "--target", files["target.json"]]
    if c["is_admin"]:
        cmd.append("--is_admin")
    return cmd


def checker_verdict(case, tmp):
    """The same case through the oslopolicy-checker command line."""
    cmd = checker_cmd(case, tmp) + ["--rule", case["rule"]]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if "passed: " + case["rule"] in res.stdout:
        return "allow"
    return "deny"


def oslo_verdict(enforcer, case):
    try:
        rules = policy.Rules.load(case["policy"], "default")
    except Exception:
        return "loaderror"
    enforcer.rules = rules
    try:
        ok = enforcer.enforce(case["rule"], dict(case["target"]), dict(case["creds"]))
    except Exception:
        return "deny"
    return "allow" if ok else "deny"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--cases", type=int, default=3000)
    ap.add_argument("--shipped", help="also run --shipped-cases cases on this policy file")
    ap.add_argument("--shipped-cases", type=int, default=500)
    ap.add_argument("--checker", type=int, default=0,
                    help="also run this many shipped cases through oslopolicy-checker")
    args = ap.parse_args()

    sys.setrecursionlimit(1000)
    r = random.Random(args.seed)
    cases = [rand_case(r) for _ in range(args.cases)]
    if args.shipped:
        with open(args.shipped) as f:
            text = f.read()
        names = sorted(yaml.safe_load(text))
        cases += [shipped_case(r, text, names) for _ in range(args.shipped_cases)]
    out = subprocess.run([args.cli], input="".join(json.dumps(c) + "\n" for c in cases),
                         capture_output=True, text=True, check=True).stdout.splitlines()
    if len(out) != len(cases):
        print("policy_cli answered %d of %d cases" % (len(out), len(cases)))
        return 1
    enforcer = policy.Enforcer(cfg.ConfigOpts(), use_conf=False)
    counts, bad, refused = {}, 0, 0
    for i, (case, line) in enumerate(zip(cases, out)):
        want = oslo_verdict(enforcer, case)
        got = line.split(" ", 1)[0]
        counts[want] = counts.get(want, 0) + 1
        if got == "loaderror" and want != "loaderror" and not in_subset(case["policy"]):
            refused += 1
            continue
        if got != want:
            bad += 1
            print("MISMATCH case %d: oslo=%s imscloud=%s\n  %s" % (i, want, line, json.dumps(case)))
    print("cases=%d mismatches=%d oslo verdicts=%s refused-outside-subset=%d"
          % (len(cases), bad, counts, refused))
    if args.shipped and args.checker:
        first, allowed = args.cases, 0
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(first, min(first + args.checker, len(cases))):
                want = checker_verdict(cases[i], tmp)
                allowed += want == "allow"
                got = out[i].split(" ", 1)[0]
                if got != want:
                    bad += 1
                    print("MISMATCH (oslopolicy-checker) case %d: checker=%s imscloud=%s\n  %s"
                          % (i, want, out[i], json.dumps(cases[i])))
        print("oslopolicy-checker cases=%d (allowed %d), mismatches in all=%d"
              % (min(args.checker, len(cases) - first), allowed, bad))
        # every rule of the shipped policy for each of those credentials:
        # one checker process gives all of a credential's verdicts
        with tempfile.TemporaryDirectory() as tmp:
            all_cases, all_want = [], []
            for i in range(first, min(first + args.checker, len(cases))):
                for rule, want in sorted(checker_verdicts(cases[i], tmp).items()):
                    all_cases.append(dict(cases[i], rule=rule))
                    all_want.append(want)
        got_all = subprocess.run([args.cli], input="".join(json.dumps(c) + "\n" for c in all_cases),
                                 capture_output=True, text=True, check=True).stdout.splitlines()
        if len(got_all) != len(all_cases):
            print("policy_cli answered %d of %d checker cases" % (len(got_all), len(all_cases)))
            return 1
        for case, want, line in zip(all_cases, all_want, got_all):
            if line.split(" ", 1)[0] != want:
                bad += 1
                print("MISMATCH (oslopolicy-checker, all rules) checker=%s imscloud=%s\n  %s"
                      % (want, line, json.dumps(case)))
        print("oslopolicy-checker all-rules decisions=%d (allowed %d), mismatches in all=%d"
              % (len(all_cases), all_want.count("allow"), bad))
        if len(all_cases) < 500:
            print("fewer than 500 oslopolicy-checker decisions: raise --checker")
            return 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
