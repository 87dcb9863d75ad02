"""Decoders: text encodings, and views that map back to original offsets."""

import base64
import codecs

from keysteward.discovery.decoders import (
    decode_bytes,
    decoded_views,
    identity_view,
    json_unescaped,
    literals_joined,
    strip_notebook_binaries,
    url_unquoted,
)


def test_utf16le_with_bom() -> None:
    data = codecs.BOM_UTF16_LE + "TOKEN=abc\r\n".encode("utf-16-le")
    decoded = decode_bytes(data)
    assert decoded == ("TOKEN=abc\r\n", "utf-16-le")


def test_utf16be_without_bom() -> None:
    decoded = decode_bytes("password = something long\n".encode("utf-16-be"))
    assert decoded is not None
    assert decoded[0].startswith("password")
    assert decoded[1] == "utf-16-be"


def test_binary_is_skipped() -> None:
    assert (
        decode_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))) is None
    )


def test_utf8_bom_removed() -> None:
    assert decode_bytes(codecs.BOM_UTF8 + b"a=1") == ("a=1", "utf-8-sig")


def test_json_unescape_maps_offsets() -> None:
    original = 'x = "say \\"hi\\" \\u0041 done"'
    view = json_unescaped(identity_view(original))
    assert view is not None
    assert view.text == 'x = "say "hi" A done"'
    position = view.text.index("done")
    assert original[view.to_original(position) :].startswith("done")
    escaped = view.text.index("A")
    assert original[view.to_original(escaped) :].startswith("\\u0041")


def test_url_unquote() -> None:
    original = "https://x.test/?token=ab%2Bcd%3D&next=1"
    view = url_unquoted(identity_view(original))
    assert view is not None
    assert "token=ab+cd=&next=1" in view.text
    position = view.text.index("&next")
    assert original[view.to_original(position) :].startswith("&next")


def test_literals_joined_python_and_js() -> None:
    python = 'key = (\n    "abc"\n    "def"\n)\n'
    view = literals_joined(identity_view(python))
    assert view is not None
    assert '"abcdef"' in view.text
    javascript = "const k = 'abc' +\n  'def';\n"
    joined = literals_joined(identity_view(javascript))
    assert joined is not None
    assert "'abcdef'" in joined.text


def test_literals_joined_maps_second_half() -> None:
    text = 'k = (\n  "abc"\n  "def"\n)\n'
    view = literals_joined(identity_view(text))
    assert view is not None
    position = view.text.index("def")
    assert text[view.to_original(position) :].startswith("def")


def test_unrelated_strings_not_joined() -> None:
    assert literals_joined(identity_view('a = "x",\nb = "y"\n')) is None


def test_k8s_secret_data_decoded() -> None:
    value = base64.b64encode(b"super-secret-value").decode()
    text = f"apiVersion: v1\nkind: Secret\ndata:\n  password: {value}\n"
    views = {view.name: view for view in decoded_views(text)}
    assert "super-secret-value" in views["base64-decoded"].text


def test_notebook_images_blanked_lines_kept() -> None:
    text = '{\n  "image/png": "iVBORw0KGgo' + "A" * 100 + '",\n  "text/plain": "x"\n}'
    stripped = strip_notebook_binaries(text)
    assert '"image/png": ""' in stripped
    assert stripped.count("\n") == text.count("\n")
    assert '"text/plain": "x"' in stripped


def test_views_chain_to_original() -> None:
    text = '"source": ["k = (\\"abc\\"\\n", "\\"def\\")"]'
    names = [view.name for view in decoded_views(text)]
    assert names[0] == "text"
    assert "json-unescaped" in names
