"""Q&A sources: JSONL and CSV records, JSON/JSONL/CSV chat transcripts, format detection and their errors.

Every error must name the file and, where known, the line as ``path:line:``.
"""

from __future__ import annotations

import json

import pytest

from csbot.errors import ConfigError, DataError, UnknownFormatError
from csbot.plugins import QA_SOURCES
from retrieval.sources import detect_source, get_source, load_records, source_formats


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def jsonl(path, *objects):
    return write(path, "".join(json.dumps(o) + "\n" for o in objects))


def raises_at(exc_info, path, line):
    """The error names ``path:line:`` and carries both as attributes."""
    assert str(exc_info.value).startswith(f"{path}:{line}: "), str(exc_info.value)
    assert exc_info.value.path == path and exc_info.value.line == line


def test_every_source_is_registered():
    assert {"qa_jsonl", "qa_csv", "transcripts_json", "transcripts_csv"} <= set(source_formats())
    assert source_formats() == sorted(QA_SOURCES.names())
    assert all(get_source(name).name == name for name in source_formats())


def test_detection_tries_the_sources_in_registry_order(tmp_path, monkeypatch):
    # Q&A records before transcripts of the same file type
    assert QA_SOURCES.names() == ["qa_csv", "qa_jsonl", "transcripts_json", "transcripts_csv"]
    tried = []
    for name in QA_SOURCES.names():
        monkeypatch.setattr(get_source(name), "sniff", lambda path, name=name: tried.append(name) or False)
    assert detect_source(write(tmp_path / "a.txt", "x")) is None
    assert tried == QA_SOURCES.names()


def test_a_source_is_named_or_given_by_dotted_path(tmp_path):
    path = jsonl(tmp_path / "qa.jsonl", {"question": "q?", "answer": "a."})
    assert [r.question for r in load_records(path, "retrieval.sources.qa_jsonl:JsonlQASource")] == ["q?"]
    with pytest.raises(UnknownFormatError, match="'xml'"):
        load_records(path, "xml")
    with pytest.raises(ConfigError, match="--format"):
        load_records(path, "retrieval.sources.qa_jsonl:Nothing")


# -- qa_jsonl ------------------------------------------------------------------------------------------


def test_qa_jsonl_reads_every_field(tmp_path):
    path = jsonl(
        tmp_path / "qa.jsonl",
        {"question": " Where is my order? ", "answer": "Track it under Orders.", "intent": "track_order",
         "tags": ["orders", "shipping"], "id": "faq-1", "source": "faq.md"},
        {"question": "How do refunds work?", "answer": "Refunds take 5 days.", "tags": "billing; refunds"},
    )
    first, second = load_records(path)
    assert (first.id, first.question, first.answer) == ("faq-1", "Where is my order?", "Track it under Orders.")
    assert first.intent == "track_order" and first.tags == ["orders", "shipping"] and first.source == "faq.md"
    assert second.intent is None and second.tags == ["billing", "refunds"]
    assert second.id.startswith("qa-") and second.source == "qa.jsonl:2"


def test_qa_jsonl_ids_default_to_a_stable_digest(tmp_path):
    a = jsonl(tmp_path / "a.jsonl", {"question": "q one", "answer": "a one"}, {"question": "q two", "answer": "a one"})
    b = jsonl(tmp_path / "b.jsonl", {"question": "q one", "answer": "a one"})
    ids = [r.id for r in load_records(a)]
    assert ids[0] == load_records(b)[0].id and ids[0] != ids[1]


def test_qa_jsonl_skips_blank_lines_and_counts_them(tmp_path):
    path = write(tmp_path / "qa.jsonl", '{"question": "q1", "answer": "a1"}\n\n{"question": "q2", "answer": "a2"}\n')
    assert [r.source for r in load_records(path)] == ["qa.jsonl:1", "qa.jsonl:3"]


def test_qa_jsonl_invalid_json_names_file_and_line(tmp_path):
    path = write(tmp_path / "qa.jsonl", '{"question": "q", "answer": "a"}\n\n{"question": broken}\n')
    with pytest.raises(DataError, match="invalid JSON") as exc:
        load_records(path)
    raises_at(exc, path, 3)


def test_qa_jsonl_line_that_is_not_an_object(tmp_path):
    path = write(tmp_path / "qa.jsonl", '{"question": "q", "answer": "a"}\n["q", "a"]\n')
    with pytest.raises(DataError, match="JSON object") as exc:
        load_records(path)
    raises_at(exc, path, 2)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"answer": "a"}, "'question'"),
        ({"question": "   ", "answer": "a"}, "'question'"),
        ({"question": "q"}, "'answer'"),
        ({"question": "q", "answer": ""}, "'answer'"),
        ({"question": "q", "answer": "a", "tags": 5}, "'tags'"),
        ({"question": "q", "answer": "a", "tags": ["ok", 3]}, "'tags'"),
        ({"question": "q", "answer": "a", "intent": 7}, "'intent'"),
    ],
)
def test_qa_jsonl_bad_fields_name_the_line(tmp_path, bad, message):
    path = jsonl(tmp_path / "qa.jsonl", {"question": "q0", "answer": "a0"}, {"question": "q1", "answer": "a1"}, bad)
    with pytest.raises(DataError, match=message) as exc:
        load_records(path, "qa_jsonl")
    raises_at(exc, path, 3)


# -- qa_csv --------------------------------------------------------------------------------------------


def test_qa_csv_reads_optional_columns(tmp_path):
    path = write(
        tmp_path / "faq.csv",
        "ID,Question,Answer,Intent,Tags,Source\n"
        'r1,Where is my order?,"Orders, then Track.",track_order,"orders,shipping",faq\n'
        "r2,Can I pay by card?,Yes.,,,\n",
    )
    assert detect_source(path) == "qa_csv"
    first, second = load_records(path)
    assert (first.id, first.question, first.answer, first.intent) == ("r1", "Where is my order?", "Orders, then Track.", "track_order")
    assert first.tags == ["orders", "shipping"] and first.source == "faq"
    assert second.id == "r2" and second.intent is None and second.tags == [] and second.source == "faq.csv:3"


def test_qa_csv_without_optional_columns(tmp_path):
    path = write(tmp_path / "faq.csv", "question,answer\nq1,a1\n\nq2,a2\n")
    records = load_records(path)
    assert [(r.question, r.answer, r.intent) for r in records] == [("q1", "a1", None), ("q2", "a2", None)]
    assert [r.source for r in records] == ["faq.csv:2", "faq.csv:4"]


def test_qa_csv_missing_answer_column_is_line_1(tmp_path):
    path = write(tmp_path / "faq.csv", "question,reply\nq1,a1\n")
    with pytest.raises(DataError, match="answer") as exc:
        load_records(path, "qa_csv")
    raises_at(exc, path, 1)


def test_qa_csv_wrong_field_count_names_the_line(tmp_path):
    path = write(tmp_path / "faq.csv", "question,answer\nq1,a1\nq2,a2,extra\n")
    with pytest.raises(DataError, match="3 fields") as exc:
        load_records(path)
    raises_at(exc, path, 3)


def test_qa_csv_quoted_multiline_row_is_named_by_its_first_line(tmp_path):
    path = write(tmp_path / "faq.csv", 'question,answer\n"q1","line one\nline two"\n,a2\n')
    with pytest.raises(DataError, match="'question'") as exc:
        load_records(path)
    raises_at(exc, path, 4)


def test_qa_csv_empty_question(tmp_path):
    path = write(tmp_path / "faq.csv", "question,answer\nq1,a1\n  ,a2\n")
    with pytest.raises(DataError, match="'question'") as exc:
        load_records(path)
    raises_at(exc, path, 3)


# -- transcripts_json ------------------------------------------------------------------------------------

CONVERSATION_A = {"id": "c1", "turns": [
    {"role": "customer", "text": "Hi there"},
    {"role": "customer", "text": "Where is my order 48213?"},
    {"role": "agent", "text": "It ships tomorrow."},
]}
CONVERSATION_B = {"id": "c2", "messages": [
    {"speaker": "user", "message": "How do I reset my password?"},
    {"speaker": "support", "content": "Use the Forgot password link."},
]}


@pytest.mark.parametrize("wrapped", [False, True])
def test_transcripts_json_list_or_conversations_key(tmp_path, wrapped):
    document = {"conversations": [CONVERSATION_A, CONVERSATION_B]} if wrapped else [CONVERSATION_A, CONVERSATION_B]
    path = write(tmp_path / "chats.json", json.dumps(document, indent=2))
    assert detect_source(path) == "transcripts_json"
    records = load_records(path)
    assert [(r.question, r.answer) for r in records] == [
        ("Where is my order 48213?", "It ships tomorrow."),
        ("How do I reset my password?", "Use the Forgot password link."),
    ]
    assert [r.id.split(":")[0] for r in records] == ["c1", "c2"]
    text = path.read_text().splitlines()
    for record in records:  # the source names the line each conversation starts on
        name, line = record.source.split(":")
        assert name == "chats.json" and text[int(line) - 1].strip() == "{"


def test_transcripts_jsonl_one_conversation_a_line(tmp_path):
    path = jsonl(tmp_path / "chats.jsonl", CONVERSATION_A, CONVERSATION_B["messages"])
    assert detect_source(path) == "transcripts_json"
    records = load_records(path)
    assert [r.source for r in records] == ["chats.jsonl:1", "chats.jsonl:2"]
    assert records[1].id.startswith("2:")  # a bare list of turns takes its line number as id


def test_transcripts_json_unknown_role_names_the_conversation_line(tmp_path):
    bad = {"id": "c3", "turns": [{"role": "customer", "text": "Where is it?"}, {"role": "robot", "text": "x"}]}
    path = write(tmp_path / "chats.json", json.dumps([CONVERSATION_A, bad], indent=2))
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if '"c3"' in text) - 1
    with pytest.raises(DataError, match="turn 2: unknown speaker role 'robot'") as exc:
        load_records(path)
    raises_at(exc, path, line)


def test_transcripts_jsonl_unknown_role(tmp_path):
    path = jsonl(tmp_path / "chats.jsonl", CONVERSATION_A, {"turns": [{"role": "martian", "text": "hello"}]})
    with pytest.raises(DataError, match="martian") as exc:
        load_records(path)
    raises_at(exc, path, 2)


def test_transcripts_missing_text(tmp_path):
    path = jsonl(tmp_path / "chats.jsonl", CONVERSATION_A, CONVERSATION_A,
                 {"turns": [{"role": "customer", "text": "ok then"}, {"role": "agent"}]})
    with pytest.raises(DataError, match="turn 2: missing text") as exc:
        load_records(path)
    raises_at(exc, path, 3)


def test_transcripts_turns_must_be_a_list(tmp_path):
    path = jsonl(tmp_path / "chats.jsonl", CONVERSATION_A, {"id": "c9", "turns": "customer: hello"})
    with pytest.raises(DataError, match="list of turns") as exc:
        load_records(path, "transcripts_json")
    raises_at(exc, path, 2)


def test_transcripts_jsonl_invalid_json(tmp_path):
    path = write(tmp_path / "chats.jsonl", json.dumps(CONVERSATION_A) + "\n{not json\n")
    with pytest.raises(DataError, match="invalid JSON") as exc:
        load_records(path)
    raises_at(exc, path, 2)


# -- transcripts_csv -------------------------------------------------------------------------------------


def test_transcripts_csv_rows_in_order(tmp_path):
    path = write(
        tmp_path / "chats.csv",
        "conversation_id,role,text\n"
        "c1,customer,Hello\n"
        "c1,customer,Can I change my delivery address?\n"
        "c2,user,Do you ship to Canada?\n"
        "c1,agent,Yes until the parcel ships.\n"
        "c2,agent,We ship to Canada and the US.\n",
    )
    assert detect_source(path) == "transcripts_csv"
    records = load_records(path)
    assert [(r.id.split(":")[0], r.question, r.answer) for r in records] == [
        ("c1", "Can I change my delivery address?", "Yes until the parcel ships."),
        ("c2", "Do you ship to Canada?", "We ship to Canada and the US."),
    ]
    assert [r.source for r in records] == ["chats.csv:2", "chats.csv:4"]  # the conversation's first row


def test_transcripts_csv_unknown_role_line(tmp_path):
    path = write(tmp_path / "chats.csv", "conversation_id,role,text\nc1,customer,Where is it?\nc1,wizard,Here.\n")
    with pytest.raises(DataError, match="'wizard'") as exc:
        load_records(path)
    raises_at(exc, path, 3)


def test_transcripts_csv_empty_conversation_id(tmp_path):
    path = write(tmp_path / "chats.csv", "conversation_id,role,text\nc1,customer,Where is it?\n ,agent,Here.\n")
    with pytest.raises(DataError, match="empty conversation id") as exc:
        load_records(path)
    raises_at(exc, path, 3)


# -- detection and load_records ------------------------------------------------------------------------


def test_detection_tells_the_formats_apart(tmp_path):
    assert detect_source(jsonl(tmp_path / "qa.jsonl", {"question": "q", "answer": "a"})) == "qa_jsonl"
    assert detect_source(write(tmp_path / "qa.csv", "question,answer\nq,a\n")) == "qa_csv"
    assert detect_source(jsonl(tmp_path / "t.jsonl", CONVERSATION_A)) == "transcripts_json"
    assert detect_source(write(tmp_path / "t.csv", "session_id,speaker,message\n1,user,hi\n")) == "transcripts_csv"
    # NLU data and unparsable first lines are no Q&A format; detection never raises
    assert detect_source(write(tmp_path / "nlu.csv", "text,label\nhello,greet\n")) is None
    assert detect_source(jsonl(tmp_path / "nlu.jsonl", {"text": "hello", "intent": "greet"})) is None
    assert detect_source(write(tmp_path / "broken.jsonl", "{nope\n")) is None
    assert detect_source(write(tmp_path / "notes.txt", "question,answer\n")) is None
    assert detect_source(tmp_path / "missing.jsonl") is None


def test_json_with_role_like_keys_is_not_a_transcript(tmp_path):
    """NLU++ date slots carry {"from": ..., "to": ...}: only a conversation's structure makes a transcript."""
    nlu = [{"text": "book from monday to friday", "intents": ["booking"],
            "slots": {"date_period": {"text": "from monday to friday", "span": [5, 26],
                                      "values": {"from": {"day": 1}, "to": {"day": 5}}}}}]
    assert detect_source(write(tmp_path / "fold0.json", json.dumps(nlu, indent=2))) is None
    assert detect_source(write(tmp_path / "meta.json", json.dumps({"author": "x", "items": []}))) is None
    assert detect_source(write(tmp_path / "empty.json", "[]")) is None
    assert detect_source(write(tmp_path / "bare.json", json.dumps([[{"from": "user", "body": "hi"}]]))) == "transcripts_json"


def test_a_first_conversation_larger_than_the_sniffed_head(tmp_path):
    long = {"id": "c1", "turns": [{"role": "customer", "text": "where is my order " * 5000},
                                  {"role": "agent", "text": "It ships today."}]}
    path = write(tmp_path / "chats.json", json.dumps({"conversations": [long]}))
    assert detect_source(path) == "transcripts_json"
    assert [r.answer for r in load_records(path)] == ["It ships today."]


def test_unknown_format_raises_unknown_format_error(tmp_path):
    path = write(tmp_path / "nlu.csv", "text,label\nhello,greet\n")
    with pytest.raises(UnknownFormatError, match="qa_csv") as exc:
        load_records(path)
    assert str(exc.value).startswith(f"{path}: ")
    with pytest.raises(UnknownFormatError, match="'rasa'"):
        load_records(path, "rasa")


def test_missing_path_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="no such file") as exc:
        load_records(tmp_path / "nowhere.jsonl")
    assert exc.value.path == tmp_path / "nowhere.jsonl"


def test_explicit_format_overrides_detection(tmp_path):
    path = write(tmp_path / "faq.txt", '{"question": "q", "answer": "a"}\n')
    assert detect_source(path) is None
    assert [r.answer for r in load_records(path, "qa_jsonl")] == ["a"]


# -- hardening (issue 12): line splitting, long first lines, duplicate keys, empty and hostile input ---


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\u0085", "\x0c"])
def test_jsonl_sources_split_lines_on_newline_only(tmp_path, separator):
    qa = {"question": f"where{separator}is it?", "answer": "Here."}
    path = write(tmp_path / "qa.jsonl", json.dumps(qa, ensure_ascii=False) + "\r\n" + json.dumps(qa) + "\n")
    assert [r.question for r in load_records(path)] == [qa["question"]] * 2
    question = f"Where is my order 48213?{separator}It is late."
    conversation = {"id": "c1", "turns": [{"role": "customer", "text": question},
                                          {"role": "agent", "text": "It ships tomorrow."}]}
    path = write(tmp_path / "chats.jsonl", json.dumps(conversation, ensure_ascii=False) + "\n")
    assert [r.answer for r in load_records(path)] == ["It ships tomorrow."]


def test_a_first_jsonl_line_longer_than_the_sniffed_head_is_detected(tmp_path):
    qa = jsonl(tmp_path / "qa.jsonl", {"question": "q " * 40_000, "answer": "a"}, {"question": "q2", "answer": "a2"})
    assert qa.stat().st_size > 64 * 1024
    assert detect_source(qa) == "qa_jsonl" and len(load_records(qa)) == 2
    long = {"id": "c1", "turns": [{"role": "customer", "text": "where is my order " * 5000},
                                  {"role": "agent", "text": "It ships today."}]}
    chats = jsonl(tmp_path / "chats.jsonl", long)
    assert detect_source(chats) == "transcripts_json"


def test_a_csv_header_longer_than_the_sniffed_head_is_detected(tmp_path):
    extra = ",".join(f"column_{n}" for n in range(1000))
    path = write(tmp_path / "qa.csv", f"{extra},question,answer\n{',' * 1000}q,a\n")
    assert detect_source(path) == "qa_csv" and [r.answer for r in load_records(path)] == ["a"]


@pytest.mark.parametrize(
    ("name", "content", "line"),
    [
        ("qa.jsonl", '{"question": "q", "answer": "a"}\n{"question": "q", "answer": "a", "answer": "b"}\n', 2),
        ("chats.jsonl", '{"id": "c1", "turns": [], "turns": [{"role": "customer", "text": "hi"}]}\n', 1),
        ("chats.json", '[\n {"id": "c1",\n  "id": "c2", "turns": []}\n]', 3),
    ],
)
def test_a_key_given_twice_names_file_and_line(tmp_path, name, content, line):
    path = write(tmp_path / name, content)
    with pytest.raises(DataError, match="given twice") as exc:
        load_records(path, "qa_jsonl" if name == "qa.jsonl" else "transcripts_json")
    raises_at(exc, path, line)


@pytest.mark.parametrize(
    ("name", "content", "fmt"),
    [
        ("qa.jsonl", "", "qa_jsonl"),
        ("qa.jsonl", "\n \n", "qa_jsonl"),
        ("qa.csv", "question,answer\n", "qa_csv"),
        ("chats.jsonl", "", "transcripts_json"),
        ("chats.json", "", "transcripts_json"),
        ("chats.json", "[]", "transcripts_json"),
        ("chats.csv", "conversation_id,role,text\n", "transcripts_csv"),
    ],
)
def test_empty_sources_are_errors_naming_the_file(tmp_path, name, content, fmt):
    path = write(tmp_path / name, content)
    with pytest.raises(DataError) as exc:
        load_records(path, fmt)
    assert exc.value.path == path


@pytest.mark.parametrize(
    ("name", "content", "fmt"),
    [
        ("qa.jsonl", '{"question": "q", "answer": "a", "id": 1' + "0" * 5000 + "}\n", "qa_jsonl"),
        ("qa.jsonl", "[" * 100_000 + "]" * 100_000 + "\n", "qa_jsonl"),
        ("qa.jsonl", '{"question": "q\\udc00", "answer": "a"}\n', "qa_jsonl"),
        ("qa.jsonl", '{"question": ["q"], "answer": "a"}\n', "qa_jsonl"),
        ("chats.json", "[" * 100_000 + "]" * 100_000, "transcripts_json"),
        ("chats.json", '{"conversations": [{"id": 1' + "0" * 5000 + ', "turns": []}]}', "transcripts_json"),
    ],
)
def test_huge_numbers_deep_nesting_and_bad_fields_are_data_errors(tmp_path, name, content, fmt):
    path = write(tmp_path / name, content)
    with pytest.raises(DataError) as exc:
        load_records(path, fmt)
    assert exc.value.path == path


def test_conversation_lines_are_found_whatever_strings_come_first(tmp_path):
    """The word "conversations" as a value before the key must not mislead the line finder."""
    document = {"title": "conversations", "tags": [1], "conversations": [CONVERSATION_A, CONVERSATION_B]}
    path = write(tmp_path / "chats.json", json.dumps(document, indent=1))
    assert [r.answer for r in load_records(path, "transcripts_json")] == [
        "It ships tomorrow.", "Use the Forgot password link."]
