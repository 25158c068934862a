#!/usr/bin/python3
"""Drive a POP3 session with Python's poplib and print what it saw as JSON.

usage: poplib_session.py HOST PORT USER PASS [CAFILE]
With CAFILE the session starts with STLS and checks the certificate.
It logs in with USER/PASS, runs CAPA, STAT, LIST, UIDL, RETR and TOP on every
message, deletes message 1 and quits.
"""
import json
import poplib
import ssl
import sys


def main():
    host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    cafile = sys.argv[5] if len(sys.argv) > 5 else None
    out = {}
    p = poplib.POP3(host, port, timeout=30)
    out["welcome"] = p.getwelcome().decode()
    if cafile:
        ctx = ssl.create_default_context(cafile=cafile)
        out["stls"] = p.stls(ctx).decode()
    out["capa"] = {k: v for k, v in p.capa().items()}
    out["user"] = p.user(user).decode()
    out["pass"] = p.pass_(password).decode()
    out["stat"] = list(p.stat())
    resp, lines, _ = p.list()
    out["list"] = [l.decode() for l in lines]
    resp, lines, _ = p.uidl()
    out["uidl"] = [l.decode() for l in lines]
    out["retr"] = []
    out["top"] = []
    for i in range(1, out["stat"][0] + 1):
        resp, lines, octets = p.retr(i)
        out["retr"].append({"resp": resp.decode(), "lines": [l.decode("latin-1") for l in lines]})
        resp, lines, octets = p.top(i, 0)
        out["top"].append([l.decode("latin-1") for l in lines])
    try:
        p.retr(99)
    except poplib.error_proto as e:
        out["retr99"] = str(e.args[0].decode())
    out["dele"] = p.dele(1).decode()
    out["quit"] = p.quit().decode()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
