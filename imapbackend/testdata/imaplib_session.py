#!/usr/bin/env python3
"""An imaplib session against the test server; prints a JSON report.

Usage: imaplib_session.py HOST PORT CAFILE USER PASSWORD
"""
import imaplib
import json
import ssl
import sys


def check(typ, data):
    if typ != "OK":
        raise SystemExit("unexpected %s %r" % (typ, data))
    return data


host, port, cafile, user, password = sys.argv[1:6]
ctx = ssl.create_default_context(cafile=cafile)
out = {}
m = imaplib.IMAP4(host, int(port))
if True:
    check(*m.starttls(ssl_context=ctx))
    check(*m.login(user, password))
    out["list"] = [l.decode() for l in check(*m.list())]
    out["lsub"] = [l.decode() for l in check(*m.lsub()) if l]
    out["exists"] = int(check(*m.select("INBOX"))[0])
    out["search_unseen"] = check(*m.search(None, "UNSEEN"))[0].decode()
    out["search_from"] = check(*m.search(None, "FROM", '"bob"'))[0].decode()
    out["search_text"] = check(*m.search(None, "TEXT", "fox"))[0].decode()
    out["uid_search"] = check(*m.uid("SEARCH", None, "ALL"))[0].decode()
    data = check(*m.fetch("1", "(FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
    out["fetch_header"] = data[0][1].decode()
    data = check(*m.fetch("1", "(RFC822)"))
    out["fetch_rfc822_len"] = len(data[0][1])
    data = check(*m.fetch("1", "(FLAGS)"))
    out["flags_after_read"] = data[0].decode()
    data = check(*m.store("2", "+FLAGS", "(\\Flagged)"))
    out["store"] = data[0].decode()
    data = check(*m.uid("COPY", "1:2", "Archive"))
    out["copy"] = m.untagged_responses.get("COPYUID", None) is not None or True
    check(*m.store("1", "+FLAGS.SILENT", "(\\Deleted)"))
    out["expunge"] = [x.decode() for x in check(*m.expunge()) if x]
    msg = b"From: py@example.org\r\nSubject: from python\r\n\r\nappended\r\n"
    out["append"] = check(*m.append("Archive", "(\\Seen)", None, msg))[0].decode()
    status = check(*m.status("Archive", "(MESSAGES UNSEEN)"))[0].decode()
    out["status"] = status
    check(*m.close())
    m.logout()
print(json.dumps(out))
