"""labkit.recipes: the small model is trained once, cached, then loaded."""

import dataclasses

import torch

from labkit import recipes


def test_small_model_is_trained_once_then_loaded_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path))
    small = dataclasses.replace(recipes.SMALL_MODEL, n_layers=1, d_model=32)
    monkeypatch.setattr(recipes, "SMALL_MODEL", small)
    quick = dataclasses.replace(
        recipes.SMALL_TRAIN, steps=4, warmup_steps=1, eval_every=4, eval_batches=1,
        batch_size=2, sample_tokens=4,
    )  # fmt: skip
    monkeypatch.setattr(recipes, "SMALL_TRAIN", quick)
    monkeypatch.setattr(recipes, "CORPUS_BYTES", 50_000)
    model, tok = recipes.load_small_model()
    folder = recipes.models_dir() / recipes.recipe_name()
    assert folder.parent == tmp_path / "models"
    assert (folder / "model.safetensors").exists()
    assert model.cfg == small and not model.training
    assert tok.decode(tok.encode("Once upon")) == "Once upon"

    def no_training(*args, **kwargs):
        raise AssertionError("trained again instead of loading the cache")

    monkeypatch.setattr(recipes, "train_small_model", no_training)
    again, _ = recipes.load_small_model()
    torch.testing.assert_close(again.state_dict(), model.state_dict())


def test_recipe_name_follows_the_recipe(monkeypatch):
    name = recipes.recipe_name()
    other = dataclasses.replace(recipes.SMALL_TRAIN, steps=601)
    monkeypatch.setattr(recipes, "SMALL_TRAIN", other)
    assert recipes.recipe_name() != name and name.startswith("small-stories-")
