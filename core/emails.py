"""One spelling per mailbox: how tenant emails are normalised before they are stored or compared.

- Unicode NFKC over the whole address: NFD and NFC spellings become one, fullwidth and other compatibility forms
  become their plain letters (a fullwidth `u@example.com` is `u@example.com`).
- The local part is lower-cased (addresses are unique in any letter case) and must then be ASCII, as Django's
  validator and the schema's `format: email` require.
- The domain is mapped by UTS #46 (case, fullwidth dots) and each label that is not ASCII is encoded to its IDNA
  A-label (`éxample.com` is stored as `xn--xample-9ua.com`); an `xn--` label must decode. ASCII labels are kept as
  they are (lower-cased), so hosts such as `ab--cd.example` stay valid.
- The result must be a mailbox of RFC 5321 (`MAILBOX`): a dot-atom local part of at most 64 characters, a domain
  of two or more LDH labels (at most 63 characters each, 253 in all) whose last one is not all digits, and fit the
  column (255 characters). That is what the schema's `format: email` promises in both directions; Django's
  `validate_email` also wants a top-level label of two or more characters, which the schema cannot say, and it
  takes quoted local parts and address literals, which we do not need.
"""

import re
import unicodedata

import idna

from core.errors import InvalidInput

MAX_EMAIL_LENGTH = 255
_ATOM = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
MAILBOX = re.compile(rf"(?=[^@]{{1,64}}@)({_ATOM}(?:\.{_ATOM})*)@(?=.{{1,253}}\Z)((?:{_LABEL}\.)+{_LABEL})\Z")


def _invalid(message: str) -> InvalidInput:
    return InvalidInput("invalid email", fields={"email": [message]})


def _domain(domain: str) -> str:
    try:
        mapped = idna.uts46_remap(domain, std3_rules=False, transitional=False)
        labels = []
        for label in mapped.split("."):
            if not label.isascii():
                label = idna.alabel(label).decode()
            elif label.startswith("xn--"):
                idna.ulabel(label)  # an A-label that does not decode is not a domain
            labels.append(label)
    except (idna.IDNAError, UnicodeError) as exc:
        raise _invalid(f"The domain is not a valid internationalised domain name ({exc}).") from exc
    return ".".join(labels)


def normalize_email(email: object) -> str:
    """The stored form of `email`; InvalidInput (field `email`) if it is not a mailbox."""
    if not isinstance(email, str):
        raise _invalid("Enter a valid email address.")
    text = unicodedata.normalize("NFKC", email.strip())
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        raise _invalid("Enter a valid email address.")
    normalized = f"{local.lower()}@{_domain(domain)}"
    if len(normalized) > MAX_EMAIL_LENGTH:
        raise _invalid(f"At most {MAX_EMAIL_LENGTH} characters once normalised.")
    if not MAILBOX.match(normalized) or normalized.rsplit(".", 1)[-1].isdigit():
        raise _invalid("Enter a valid email address.")
    return normalized


def normalize_email_prefix(prefix: str) -> str:
    """What a prefix search compares with the stored form: a whole address normalised, else NFKC and lower case."""
    try:
        return normalize_email(prefix)
    except InvalidInput:
        return unicodedata.normalize("NFKC", prefix.strip()).lower()
