"""Mail exports: every text part and attachment of .eml files and mbox archives.

The standard library's ``email`` package undoes base64 and quoted-printable
transfer encodings, so rules match the decoded part; the pointer names the
message and the part.
"""

import email
import email.policy
import mailbox
import os
import tempfile
from collections.abc import Iterator
from email.message import Message
from pathlib import PurePath

from keysteward.discovery.sources import (
    DELIMITED_SUFFIXES,
    SPREADSHEET_SUFFIXES,
    Document,
    ScanStats,
    documents_from_bytes,
)


def _message_documents(
    message: Message, path: str, label: str, stats: ScanStats
) -> Iterator[Document]:
    subject = str(message.get("Subject", "") or "")
    if subject:
        yield Document(
            path=path,
            text=subject,
            size=len(subject),
            context="mail-header",
            pointer=f"{label} header Subject",
        )
    for number, part in enumerate(message.walk(), start=1):
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes) or not payload:
            continue
        filename = part.get_filename() or ""
        content_type = part.get_content_type()
        encoding = str(part.get("Content-Transfer-Encoding", "7bit")).lower()
        described = f"attachment {filename}" if filename else content_type
        pointer = f"{label} part {number} ({described})"
        suffix = PurePath(filename).suffix.lower()
        if suffix in SPREADSHEET_SUFFIXES or suffix in DELIMITED_SUFFIXES:
            yield from documents_from_bytes(
                payload, path, filename, stats, pointer=pointer
            )
            continue
        if not content_type.startswith("text/") and not filename:
            continue
        charset = part.get_content_charset() or "utf-8"
        for document in documents_from_bytes(
            _reencode(payload, charset),
            path,
            filename or "part.txt",
            stats,
            pointer=pointer,
        ):
            document.context = f"mail-{encoding}"
            yield document


def _reencode(payload: bytes, charset: str) -> bytes:
    """Return the part's bytes as UTF-8 when it names another known charset."""
    if charset.lower() in ("utf-8", "us-ascii", "ascii"):
        return payload
    try:
        return payload.decode(charset, errors="replace").encode("utf-8")
    except LookupError:
        return payload


def mail_documents(
    data: bytes, path: str, suffix: str, stats: ScanStats
) -> Iterator[Document]:
    """Yield a document per text part and attachment of an .eml or .mbox file."""
    if suffix == ".eml":
        message = email.message_from_bytes(data, policy=email.policy.compat32)
        yield from _message_documents(message, path, "message 1", stats)
        return
    # mailbox.mbox reads from a path, so bytes from git history or an
    # attachment go through a private temporary file.
    handle, temporary = tempfile.mkstemp(suffix=".mbox")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        yield from mbox_file_documents(temporary, path, stats)
    finally:
        os.unlink(temporary)


def mbox_file_documents(
    file_path: str | os.PathLike[str], path: str, stats: ScanStats
) -> Iterator[Document]:
    """Yield the documents of each message in the mbox archive at ``file_path``."""
    box = mailbox.mbox(file_path, create=False)
    try:
        for number, message in enumerate(box, start=1):
            yield from _message_documents(message, path, f"message {number}", stats)
    finally:
        box.close()
