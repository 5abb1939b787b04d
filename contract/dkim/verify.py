"""Verifies the DKIM signature of one message with dkimpy, given the selector's TXT record.

    verify.py MESSAGE_FILE SELECTOR DOMAIN TXT_RECORD

dkimpy's `dnsfunc` hook answers the key lookup instead of DNS: the record is returned for
SELECTOR._domainkey.DOMAIN and nothing else, so a signature naming another selector or domain
fails as it would in the wild. Prints "pass" and exits 0, or "fail: why" and exits 1.
"""

import logging
import sys

import dkim


def main() -> int:
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    path, selector, domain, record = sys.argv[1:]
    with open(path, "rb") as f:
        message = f.read()
    expected = f"{selector}._domainkey.{domain}.".lower()

    def dnsfunc(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        return record.encode() if name.lower() == expected else None

    # dkimpy says why a signature fails only through its logger.
    reasons = []

    class Collect(logging.Handler):
        def emit(self, entry):
            reasons.append(entry.getMessage())

    logger = logging.getLogger("dkim-verify")
    logger.addHandler(Collect())
    logger.setLevel(logging.DEBUG)
    try:
        ok = dkim.DKIM(message, logger=logger).verify(dnsfunc=dnsfunc)
    except dkim.DKIMException as e:
        ok, reasons = False, reasons + [str(e)]
    if ok:
        print("pass")
        return 0
    print("fail: " + ("; ".join(r for r in reasons if r) or "signature did not verify"))
    return 1


if __name__ == "__main__":
    sys.exit(main())
