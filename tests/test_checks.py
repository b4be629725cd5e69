"""Set-up checks of `ActiveKDCallback`, raised before any teacher call: label names that disagree, default
``LABEL_N`` names, datasets that are not a `datasets.Dataset`, and a ``preprocess`` that worker processes cannot
receive."""

from __future__ import annotations

import pickle

import pytest
import torch
from datasets import ClassLabel

from hf_activekd import ActiveKDCallback, ActiveKDConfig
from testing_utils import LABELS, MARKER, ForwardRecorder, make_model


def _callback(trainer, teacher, preprocess=None, **config):
    config.setdefault("samples_per_round", 8)
    config.setdefault("samples_per_request", 2)
    config.setdefault("patience", 0)
    callback = ActiveKDCallback(
        trainer, teacher=teacher, config=ActiveKDConfig(**config), preprocess=preprocess, progress=False
    )
    trainer.add_callback(callback)
    return callback


class CountingTeacher:
    """Wraps a teacher's ``generate`` to count the requests that reach it."""

    def __init__(self, teacher):
        self.requests = []
        inner = teacher.generate

        def generate(requests, progress=True):
            self.requests.extend(requests)
            return inner(requests, progress=progress)

        teacher.generate = generate


# ---------------------------------------------------------------------- labels
def test_classlabel_names_in_another_order_are_refused(make_trainer, datasets_small, preprocess, pool_teacher):
    train, val = datasets_small
    shuffled = [LABELS[i] for i in (1, 0, 3, 2)]
    train = train.cast_column("label", ClassLabel(names=shuffled))
    trainer = make_trainer(train=train)
    counter = CountingTeacher(pool_teacher)
    with pytest.raises(ValueError, match=r"ClassLabel.*another order.*id2label"):
        _callback(trainer, pool_teacher, preprocess)
    assert counter.requests == []


def test_classlabel_names_that_agree_are_accepted(make_trainer, datasets_small, preprocess, pool_teacher):
    train, val = datasets_small
    trainer = make_trainer(
        train=train.cast_column("label", ClassLabel(names=LABELS)),
        eval_dataset=val.cast_column("label", ClassLabel(names=LABELS)),
    )
    callback = _callback(trainer, pool_teacher, preprocess)
    assert callback.label_names == LABELS


def test_eval_classlabel_with_other_names_is_refused(make_trainer, datasets_small, preprocess, pool_teacher):
    train, val = datasets_small
    trainer = make_trainer(eval_dataset=val.cast_column("label", ClassLabel(names=["a", "b", "c", "d"])))
    with pytest.raises(ValueError, match=r"eval_dataset\['label'\].*ClassLabel.*\['a', 'b', 'c', 'd'\]"):
        _callback(trainer, pool_teacher, preprocess)


def test_default_label_n_names_are_refused_unless_label_names_given(make_trainer, preprocess, pool_teacher):
    model = make_model(labels=[f"LABEL_{i}" for i in range(4)])
    trainer = make_trainer(model=model)
    with pytest.raises(ValueError, match=r"LABEL_0.*label_names"):
        _callback(trainer, pool_teacher, preprocess)
    callback = _callback(
        make_trainer(model=make_model(labels=[f"LABEL_{i}" for i in range(4)])),
        pool_teacher,
        preprocess,
        label_names=LABELS,
    )
    assert callback.label_names == LABELS


def test_config_label_names_that_disagree_with_the_model_are_refused(make_trainer, preprocess, pool_teacher):
    trainer = make_trainer()
    with pytest.raises(ValueError, match=r"label_names.*another order.*id2label"):
        _callback(trainer, pool_teacher, preprocess, label_names=list(reversed(LABELS)))


def test_string_label_column_is_refused_with_the_fix(make_trainer, datasets_small, preprocess, pool_teacher):
    train, val = datasets_small
    named = train.map(lambda r: {"label": LABELS[r["label"]]})
    trainer = make_trainer(train=named)
    with pytest.raises(ValueError, match=r"integer class ids.*class_encode_column"):
        _callback(trainer, pool_teacher, preprocess)


# ---------------------------------------------------------------------- datasets that are not a datasets.Dataset
def test_iterable_train_dataset_trains_on_generated_rows(
    make_trainer, datasets_small, preprocess, tokenizer, pool_teacher
):
    train, _ = datasets_small
    trainer = make_trainer(train=train.to_iterable_dataset(), max_steps=10, eval_steps=4)
    callback = _callback(trainer, pool_teacher, preprocess, rows_per_batch=2)
    recorder = ForwardRecorder(trainer.model, tokenizer.convert_tokens_to_ids(MARKER))
    trainer.train()
    assert callback.rounds[0]["generated"] and callback.rounds[0]["accepted"] > 0
    assert recorder.train_marker_rows > 0


class TorchRows(torch.utils.data.Dataset):
    """A plain torch dataset of dict rows."""

    def __init__(self, table, columns):
        self.rows = [{c: row[c] for c in columns} for row in table]

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]


def test_torch_train_dataset_trains_on_generated_rows(
    make_trainer, datasets_small, preprocess, tokenizer, pool_teacher
):
    train, _ = datasets_small
    rows = TorchRows(train, ["text", "label", "input_ids", "token_type_ids", "attention_mask"])
    trainer = make_trainer(train=rows, max_steps=10, eval_steps=4)
    callback = _callback(trainer, pool_teacher, preprocess, rows_per_batch=2)
    recorder = ForwardRecorder(trainer.model, tokenizer.convert_tokens_to_ids(MARKER))
    trainer.train()
    assert callback.rounds[0]["accepted"] > 0 and recorder.train_marker_rows > 0


def test_all_columns_kept_with_a_custom_collator(make_trainer, datasets_small, preprocess, tokenizer, pool_teacher):
    from transformers import DataCollatorWithPadding

    pad = DataCollatorWithPadding(tokenizer)

    def collate(features):  # a custom collator that sees every column, text included, and drops the text itself
        return pad([{k: v for k, v in f.items() if k != "text"} for f in features])

    train, _ = datasets_small
    trainer = make_trainer(remove_unused_columns=False, max_steps=10, eval_steps=4)
    trainer.data_collator = collate
    callback = _callback(trainer, pool_teacher, preprocess, rows_per_batch=2)
    recorder = ForwardRecorder(trainer.model, tokenizer.convert_tokens_to_ids(MARKER))
    trainer.train()
    assert callback.rounds[0]["accepted"] > 0 and recorder.train_marker_rows > 0


def test_rows_that_generated_samples_cannot_fill_are_refused_before_training(
    make_trainer, datasets_small, preprocess, pool_teacher
):
    train, _ = datasets_small
    train = train.add_column("source_id", list(range(len(train))))
    rows = TorchRows(train, ["text", "label", "input_ids", "token_type_ids", "attention_mask", "source_id"])
    trainer = make_trainer(train=rows, remove_unused_columns=False)
    counter = CountingTeacher(pool_teacher)
    with pytest.raises(ValueError, match=r"source_id.*preprocess"):
        _callback(trainer, pool_teacher, preprocess)
    assert counter.requests == []


# ---------------------------------------------------------------------- worker start methods
def test_default_preprocess_pickles(make_trainer, tokenizer, pool_teacher):
    trainer = make_trainer()
    trainer.processing_class = tokenizer
    callback = _callback(trainer, pool_teacher)
    restored = pickle.loads(pickle.dumps(callback.preprocess))
    assert (
        restored({"text": ["a goal"], "label": [0]})["input_ids"]
        == callback.preprocess({"text": ["a goal"], "label": [0]})["input_ids"]
    )


def test_lambda_preprocess_with_spawned_workers_is_refused(make_trainer, preprocess, pool_teacher):
    trainer = make_trainer(dataloader_num_workers=1, dataloader_multiprocessing_context="spawn")
    with pytest.raises(ValueError, match=r"pickle.*spawn.*preprocess"):
        _callback(trainer, pool_teacher, preprocess)
    _callback(
        make_trainer(dataloader_num_workers=0, dataloader_multiprocessing_context="spawn"), pool_teacher, preprocess
    )  # no workers: nothing to pickle


def test_spawned_worker_trains_on_generated_rows(make_trainer, tokenizer, pool_teacher):
    trainer = make_trainer(
        dataloader_num_workers=1,
        dataloader_multiprocessing_context="spawn",
        dataloader_prefetch_factor=1,
        dataloader_persistent_workers=True,  # two worker starts (train, eval), each a fresh interpreter
        per_device_train_batch_size=4,
        max_steps=7,
        eval_steps=3,
        per_device_eval_batch_size=64,
    )
    trainer.processing_class = tokenizer
    callback = _callback(trainer, pool_teacher, rows_per_batch=2)  # the default preprocess
    recorder = ForwardRecorder(trainer.model, tokenizer.convert_tokens_to_ids(MARKER))
    trainer.train()
    assert callback.rounds[0]["accepted"] > 0
    assert recorder.train_marker_rows > 0  # the collator, preprocess and tokenizer reached the spawned worker
