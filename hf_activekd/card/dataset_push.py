"""Pushing the generated rows to their dataset repo on the Hub, with their dataset card (never more public than the
model, see :mod:`hf_activekd.privacy`)."""

from __future__ import annotations

import tempfile

from huggingface_hub import DatasetCard
from transformers.utils import logging

from ..privacy import check_existing_dataset, dataset_visibility
from ..redaction import redact
from .dataset_card import build_dataset_card, generated_dataset
from .inputs import CardInputs

logger = logging.get_logger(__name__)


class _DatasetPushMixin:
    """``push_dataset`` of :class:`~hf_activekd.card.ActiveKDPublisher`, which sets these attributes (and provides
    ``trainer``, ``is_main``, ``inputs`` and ``_secrets``)."""

    push_dataset_enabled: bool
    last_push_error: str | None
    pushed_dataset_repo: str | None
    _pushed_signature: tuple | None

    def push_dataset(self, inputs: CardInputs | None = None) -> str | None:
        """Push the accepted rows and their card to the dataset repo (private when the model repo is private, see
        :mod:`hf_activekd.privacy`).

        Skipped when disabled, when there is no row, or when nothing changed since the last push. Failures are logged
        (and kept in :attr:`last_push_error`), never raised, so that a checkpoint push does not end training.
        """
        if not self.push_dataset_enabled or not self.is_main:
            return None
        inputs = inputs or self.inputs()
        if not inputs.rows:
            logger.info("ActiveKD: no generated row yet; no dataset pushed.")
            return None
        signature = (len(inputs.rows), len(inputs.rounds), inputs.model_repo_id)
        if signature == self._pushed_signature:
            return self.pushed_dataset_repo
        args = self.trainer.args
        repo_id = inputs.dataset_repo_id
        try:
            # never more public than the model: ask the Hub how visible the model repo really is (see privacy.py)
            visibility = dataset_visibility(inputs.model_repo_id, args.hub_token, args.hub_private_repo)
            check_existing_dataset(repo_id, args.hub_token, visibility)
            dataset = generated_dataset(inputs.rows, inputs.label_names)
            dataset.push_to_hub(
                repo_id,
                private=visibility.private,
                token=args.hub_token,
                commit_message=f"ActiveKD data: {len(inputs.rows)} rows after round {inputs.rounds[-1]['round']}",
            )
            self._push_dataset_card(inputs, repo_id)
        except Exception as exc:  # noqa: BLE001 - see docstring
            self.last_push_error = redact(f"{type(exc).__name__}: {exc}", self._secrets())
            logger.error("ActiveKD could not push the generated data to %s: %s", repo_id, self.last_push_error)
            return None
        self.last_push_error = None
        self._pushed_signature = signature
        self.pushed_dataset_repo = repo_id
        logger.info("ActiveKD pushed %d generated rows to the dataset %s.", len(inputs.rows), repo_id)
        return repo_id

    def _push_dataset_card(self, inputs: CardInputs, repo_id: str) -> None:
        """Replace the README that ``Dataset.push_to_hub`` wrote, keeping its ``configs`` and ``dataset_info``."""
        from huggingface_hub import HfApi

        args = self.trainer.args
        api = HfApi(token=args.hub_token)
        existing = None
        with tempfile.TemporaryDirectory() as cache:
            try:
                path = api.hf_hub_download(repo_id, "README.md", repo_type="dataset", cache_dir=cache)
                existing = DatasetCard.load(path).data
            except Exception as exc:  # noqa: BLE001 - write a card without the loader metadata then
                logger.warning("ActiveKD could not read the dataset card written by datasets: %s", exc)
        card = build_dataset_card(inputs, existing, secrets=self._secrets())
        api.upload_file(
            path_or_fileobj=str(card).encode("utf-8"),
            path_in_repo="README.md",
            repo_id=repo_id,
            repo_type="dataset",
            commit_message="ActiveKD dataset card",
        )
