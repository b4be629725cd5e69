"""The visibility of the generated dataset: never more public than the model it was made for.

The dataset repo is created (by ``datasets.Dataset.push_to_hub``) after the model push has created the model repo, so
the Hub can be asked how visible the model really is, whatever ``hub_private_repo`` or ``push_to_hub(private=...)``
said and whether the repo existed before:

- ``hub_private_repo=True``, or a private model repo: the dataset is created private;
- a public model repo: created with ``hub_private_repo`` as given (`None`, the default, leaves it to the account's
  default; the dataset is never forced public);
- the Hub cannot say: created private, with a warning;
- a private model whose dataset repo already exists and is public: nothing is pushed (an error says what to do).
"""

from __future__ import annotations

from dataclasses import dataclass

from transformers.utils import logging

logger = logging.get_logger(__name__)


@dataclass
class DatasetVisibility:
    """How to create the dataset repo: ``private`` (as passed to ``push_to_hub``) and why."""

    private: bool | None
    reason: str
    model_private: bool | None


def _repo_private(api, repo_id: str, repo_type: str) -> bool | None:
    """Whether the repo is private (`None` when the Hub's answer has no visibility). Raises when the call fails."""
    info = api.repo_info(repo_id, repo_type=repo_type)
    private = getattr(info, "private", None)
    return None if private is None else bool(private)


def dataset_visibility(
    model_repo_id: str, token: str | bool | None, hub_private_repo: bool | None
) -> DatasetVisibility:
    """Decide the ``private`` flag of the dataset repo from the model repo's visibility on the Hub."""
    from huggingface_hub import HfApi

    if hub_private_repo:
        return DatasetVisibility(True, "hub_private_repo=True", None)
    try:
        model_private = _repo_private(HfApi(token=token), model_repo_id, "model")
    except Exception as exc:  # noqa: BLE001 - any failure: be safe
        model_private, failure = None, f"{type(exc).__name__}"
    else:
        failure = "no visibility in the Hub's answer"
    if model_private is None:
        logger.warning(
            "ActiveKD could not tell whether the model repo %s is private (%s): the generated dataset is created "
            "private. Change its visibility on the Hub if it should be public.",
            model_repo_id,
            failure,
        )
        return DatasetVisibility(True, "model visibility unknown", None)
    if model_private:
        return DatasetVisibility(True, f"the model repo {model_repo_id} is private", True)
    return DatasetVisibility(hub_private_repo, f"the model repo {model_repo_id} is public", False)


def check_existing_dataset(dataset_repo_id: str, token: str | bool | None, visibility: DatasetVisibility) -> None:
    """Raise `PermissionError` when the data should be private but the dataset repo already exists and is public."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError

    if not visibility.private:
        return
    try:
        private = _repo_private(HfApi(token=token), dataset_repo_id, "dataset")
    except RepositoryNotFoundError:
        return  # created private by the push
    if private is False:
        raise PermissionError(
            f"the dataset repo {dataset_repo_id} is public but the model repo is private ({visibility.reason}): the "
            "generated data was not pushed. Make the dataset repo private on the Hub, or pass another "
            "dataset_repo_id to ActiveKDCallback."
        )
