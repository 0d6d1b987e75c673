"""Every class electra_tf registers with Keras, through the shared harness (tests/harness.py).

`CASES` holds one entry per registered class (two for the classes with a variant worth its own
run); `test_every_registered_class_has_a_harness_case` fails, naming the class, when a class is
registered without one.
"""

import importlib
import pkgutil

import keras
import numpy as np
import pytest
import tensorflow as tf
from harness import (
    CHECKS,
    LayerCase,
    ObjectCase,
    case_id,
    global_dtype_policy,
    run_case,
    run_dtype_policy_checks,
    run_optimizer_checks,
    run_schedule_checks,
)

import electra_tf
from conftest import TINY_ENCODER, TINY_MODEL_CONFIG, TINY_PRETRAINING_CONFIG
from electra_tf.config import OptimizerConfig
from electra_tf.data import SPECIAL_TOKENS, ClassificationPreprocessor, WordPieceTokenizer
from electra_tf.layers import (
    ElectraEmbeddings,
    ElectraEncoder,
    MaskedLMHead,
    MultiHeadSelfAttention,
    ReplacedTokenDetectionHead,
    TransformerEncoderBlock,
)
from electra_tf.layers.dropout import HalfBitsDropout
from electra_tf.layers.matmul import BFloat16MatmulPolicy, MatmulDense, MatmulEinsumDense
from electra_tf.layers.normalization import LayerNorm
from electra_tf.models import (
    Discriminator,
    ElectraPretrainer,
    Generator,
    SequenceClassifier,
    SequenceRegressor,
    SpanExtractor,
    TokenClassifier,
)
from electra_tf.training import (
    NO_DECAY_NAME_PATTERNS,
    LayerwiseAdamW,
    WarmupLinearDecay,
    create_optimizer,
)
from electra_tf.training.optimizer import ElectraAdamW

# ------------------------------------------------------------------ tiny inputs

RNG = np.random.default_rng(0)
HIDDEN = RNG.normal(size=(3, 8, 16)).astype("float32")  # [batch, seq_len, hidden]
MASK = np.array([[1] * 8, [1] * 6 + [0] * 2, [1] * 4 + [0] * 4], dtype="int32")
ENCODER = dict(TINY_ENCODER, num_layers=1)  # E=16 -> H=24 projection, 2 heads, vocab 50
MODEL_CONFIG = dict(TINY_MODEL_CONFIG, num_layers=1)  # H=32, generator H=16


def _token_batch():
    """3 sequences of 8 ids < 50 with [CLS]=2, [SEP]=3, padding 0; lengths 8, 6, 4; the first
    has a second segment."""
    token_ids = RNG.integers(5, 50, size=(3, 8)).astype("int32")
    for row, length in enumerate((8, 6, 4)):
        token_ids[row, 0], token_ids[row, length - 1] = 2, 3
        token_ids[row, length:] = 0
    segment_ids = np.zeros_like(token_ids)
    segment_ids[0, 4:] = 1
    return {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": MASK}


TOKENS = _token_batch()
SHORTER_TOKENS = {k: v[:, :5] for k, v in TOKENS.items()}

VOCAB = list(SPECIAL_TOKENS) + ["a", "great", "movie", "!", "bad", "film", "##s", "the"]
TEXTS = tf.constant(["A great movie!", "bad films", "the"])
TEXT_IDS = [[5, 6, 7, 8], [9, 10, 11], [12]]


def _vocab_file(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("".join(f"{token}\n" for token in VOCAB), encoding="utf-8")
    return str(path)


# ------------------------------------------------------------------ skip reasons shared by cases

NO_WEIGHTS_TO_FIT = "no weights: nothing for a fit step to change"
WHOLE_TEXTS = "takes whole texts: there is no sequence length to vary (rows differ already)"
RANDOM_STREAM = ("the masking stream is a variable that set_weights does not copy, so the two "
                 "copies mask other positions (the Generator and Discriminator cases compare "
                 "their networks)")
MLM_VARIANT = ("the ELECTRA case runs the same masking, generator and train_step (plus the "
               "discriminator) through this check; this variant's own path is its outputs, "
               "weights, config and reload")
NOT_A_LAYER = "not a layer: nothing is called on tensors"
OPTIMIZER_SKIPS = {
    "symbolic_call": NOT_A_LAYER,
    "weight_counts": "not a layer: it owns no weights; its variables (step, two moments per "
                     "weight) are compared one by one after the .keras reload",
    "sequence_length": "not a layer: no sequence",
    "mixed_matches_float32": "bfloat16 activations give other gradients, so another step by "
                             "design; the mixed step is checked to be finite and to reach every "
                             "weight",
    "bfloat16_matmul": "the tiny model's Keras layers compute in float32 under bfloat16_matmul "
                       "(only electra_tf's layers multiply in bfloat16): the optimizer would see "
                       "exactly the float32 case",
    "bfloat16_matmul_matches_float32": "the same float32 case: nothing to compare",
}
SCHEDULE_SKIPS = {
    "symbolic_call": "a function of the step count, not a layer",
    "weight_counts": "no variables: a pure function of the step count",
    "fit_step": "nothing to train; the ElectraAdamW and LayerwiseAdamW cases take their steps "
                "with this schedule",
    "sequence_length": "no sequence",
}


def _electra_adamw(model):
    config = OptimizerConfig(learning_rate=1e-2, warmup_steps=0, train_steps=10, weight_decay=0.1)
    return create_optimizer(config)


def _layerwise_adamw(model):
    optimizer = LayerwiseAdamW(
        lr_multipliers={model.get_layer("embedding").embeddings.path: 0.5},
        learning_rate=WarmupLinearDecay(1e-2, 0, 10), weight_decay=0.1, global_clipnorm=1.0)
    optimizer.exclude_from_weight_decay(var_names=list(NO_DECAY_NAME_PATTERNS))
    return optimizer


# ------------------------------------------------------------------ the cases

def _electra_pretrainer_case(model: dict, pretraining: dict, trainable_weights: int,
                             id: str = "") -> LayerCase:
    """An ELECTRA-objective `ElectraPretrainer` case with `model` / `pretraining` changes."""
    return LayerCase(
        ElectraPretrainer,
        lambda _: ElectraPretrainer(dict(MODEL_CONFIG, **model),
                                    dict(TINY_PRETRAINING_CONFIG, **pretraining), seed=3),
        TOKENS, {"masked_token_ids": (3, 8), "masked_positions": (3, 2),
                 "mlm_logits": (3, 2, 50), "corrupted_token_ids": (3, 8),
                 "disc_logits": (3, 8), "loss": ()},
        trainable_weights=trainable_weights, non_trainable_weights=0,
        call_kwargs={"training": False}, own_train_step=True,
        mixed_output_dtype={"mlm_logits": "float32", "disc_logits": "float32",
                            "loss": "float32", "corrupted_token_ids": "int32"},
        shorter_inputs=SHORTER_TOKENS, id=id,
        skip={"mixed_matches_float32": RANDOM_STREAM,
              "bfloat16_matmul_matches_float32": RANDOM_STREAM})


CASES = [
    LayerCase(ElectraEmbeddings, dict(vocab_size=50, embedding_size=16,
                                      max_position_embeddings=32),
              (TOKENS["token_ids"], TOKENS["segment_ids"]), (3, 8, 16),
              trainable_weights=5, non_trainable_weights=0,  # word, position, type, LN
              shorter_inputs=(SHORTER_TOKENS["token_ids"], SHORTER_TOKENS["segment_ids"])),
    LayerCase(ElectraEmbeddings, dict(vocab_size=50, embedding_size=16, max_position_embeddings=32,
                                      position_embedding="sinusoidal"),
              (TOKENS["token_ids"], TOKENS["segment_ids"]), (3, 8, 16),
              trainable_weights=4, non_trainable_weights=0,  # the sinusoid is not a weight
              shorter_inputs=(SHORTER_TOKENS["token_ids"], SHORTER_TOKENS["segment_ids"]),
              id="ElectraEmbeddings-sinusoidal"),
    LayerCase(MultiHeadSelfAttention, dict(num_heads=2, key_dim=8), (HIDDEN, MASK), (3, 8, 16),
              trainable_weights=8, non_trainable_weights=0,  # Q, K, V, output: kernel + bias
              shorter_inputs=(HIDDEN[:, :5], MASK[:, :5])),
    LayerCase(TransformerEncoderBlock, dict(num_heads=2, intermediate_size=32), (HIDDEN, MASK),
              (3, 8, 16), trainable_weights=16, non_trainable_weights=0,  # 8 + 2 LN + 2 FFN
              shorter_inputs=(HIDDEN[:, :5], MASK[:, :5])),
    LayerCase(ElectraEncoder, ENCODER, TOKENS, (3, 8, 24),
              trainable_weights=23, non_trainable_weights=0,  # 5 embeddings + 2 E->H + 16
              shorter_inputs=SHORTER_TOKENS),
    LayerCase(MaskedLMHead, dict(vocab_size=50, embedding_size=16),
              (HIDDEN[:, :3], RNG.normal(size=(50, 16)).astype("float32")), (3, 3, 50),
              trainable_weights=5, non_trainable_weights=0,  # dense, LN, output bias
              mixed_output_dtype="float32",  # logits feed float32 losses and sampling
              # Each logit sums 16 products of unit-scale numbers (|logit| up to ~12), and
              # bfloat16 keeps 8 bits of mantissa: measured differences up to 0.08.
              mixed_atol=0.25,
              shorter_inputs=(HIDDEN[:, :2], RNG.normal(size=(50, 16)).astype("float32"))),
    LayerCase(ReplacedTokenDetectionHead, {}, HIDDEN, (3, 8), trainable_weights=4,
              non_trainable_weights=0, mixed_output_dtype="float32", shorter_inputs=HIDDEN[:, :5]),
    LayerCase(MatmulDense, dict(units=4), HIDDEN, (3, 8, 4), trainable_weights=2,
              non_trainable_weights=0, shorter_inputs=HIDDEN[:, :5]),  # kernel, bias
    LayerCase(MatmulEinsumDense, dict(equation="btd,dnh->btnh", output_shape=(None, 2, 8),
                                      bias_axes="nh"),
              HIDDEN, (3, 8, 2, 8), trainable_weights=2, non_trainable_weights=0,
              shorter_inputs=HIDDEN[:, :5]),
    LayerCase(LayerNorm, dict(epsilon=1e-12), HIDDEN, (3, 8, 16), trainable_weights=2,
              non_trainable_weights=0, shorter_inputs=HIDDEN[:, :5]),  # gamma, beta
    LayerCase(HalfBitsDropout, dict(rate=0.5, seed=1), HIDDEN, (3, 8, 16),
              trainable_weights=0, non_trainable_weights=0, shorter_inputs=HIDDEN[:, :5],
              skip={"fit_step": NO_WEIGHTS_TO_FIT + " (its training-time masks are tested in "
                                                    "test_layers.py)"}),
    LayerCase(Generator, lambda _: Generator(ElectraEncoder(**ENCODER)), TOKENS, (3, 8, 50),
              trainable_weights=28, non_trainable_weights=0,  # encoder 23 + MLM head 5
              mixed_output_dtype="float32", shorter_inputs=SHORTER_TOKENS),
    LayerCase(Discriminator, lambda _: Discriminator(ElectraEncoder(**ENCODER)), TOKENS, (3, 8),
              trainable_weights=27, non_trainable_weights=0,  # encoder 23 + RTD head 4
              mixed_output_dtype="float32", shorter_inputs=SHORTER_TOKENS),
    LayerCase(SequenceClassifier,
              lambda _: SequenceClassifier(ElectraEncoder(**ENCODER), num_labels=3,
                                           label_names=["neg", "neutral", "pos"]),
              TOKENS, (3, 3), trainable_weights=25, non_trainable_weights=0,  # 23 + head 2
              mixed_output_dtype="float32", shorter_inputs=SHORTER_TOKENS),
    LayerCase(SequenceClassifier,
              lambda _: SequenceClassifier(ElectraEncoder(**ENCODER), num_labels=2,
                                           pooling="mean"),
              TOKENS, (3, 2), trainable_weights=25, non_trainable_weights=0,
              mixed_output_dtype="float32", shorter_inputs=SHORTER_TOKENS,
              id="SequenceClassifier-mean"),
    LayerCase(SequenceRegressor,
              lambda _: SequenceRegressor(ElectraEncoder(**ENCODER), initial_score=2.5),
              TOKENS, (3,), trainable_weights=25, non_trainable_weights=0,  # 23 + head 2
              mixed_output_dtype="float32", shorter_inputs=SHORTER_TOKENS),
    LayerCase(TokenClassifier,
              lambda _: TokenClassifier(ElectraEncoder(**ENCODER), ["O", "B-PER", "I-PER"]),
              TOKENS, (3, 8, 3), trainable_weights=25, non_trainable_weights=0,  # 23 + head 2
              mixed_output_dtype="float32", shorter_inputs=SHORTER_TOKENS),
    LayerCase(SpanExtractor, lambda _: SpanExtractor(ElectraEncoder(**ENCODER)),
              TOKENS, (3, 8, 2), trainable_weights=25, non_trainable_weights=0,  # 23 + head 2
              mixed_output_dtype="float32", shorter_inputs=SHORTER_TOKENS),
    # shared embeddings 5, generator encoder 16 (E = H: no projection) + MLM head 5,
    # discriminator encoder 2 + 16 + RTD head 4
    _electra_pretrainer_case({}, {}, trainable_weights=48),
    # as above + the discriminator's own embedding block (residual word table, positions,
    # types, LayerNorm 2)
    _electra_pretrainer_case({}, {"embedding_sharing": "gradient_disentangled"},
                             trainable_weights=53, id="ElectraPretrainer-disentangled"),
    # one encoder (embeddings 5 + E->H 2 + 16) + MLM head 5 + RTD head 4
    _electra_pretrainer_case({"generator_hidden_fraction": 1.0}, {"share_encoder": True},
                             trainable_weights=32, id="ElectraPretrainer-shared-encoder"),
    LayerCase(ElectraPretrainer,
              lambda _: ElectraPretrainer(MODEL_CONFIG, dict(TINY_PRETRAINING_CONFIG,
                                                             electra_objective=False), seed=3),
              TOKENS, {"masked_token_ids": (3, 8), "mlm_logits": (3, 2, 50), "loss": ()},
              trainable_weights=28, non_trainable_weights=0,  # embeddings 5 + 2 + 16 + 5
              call_kwargs={"training": False}, own_train_step=True,
              shorter_inputs=SHORTER_TOKENS, id="ElectraPretrainer-mlm",
              skip={name: MLM_VARIANT for name in ("fit_step", "mixed_bfloat16",
                                                   "mixed_matches_float32", "bfloat16_matmul",
                                                   "bfloat16_matmul_matches_float32")}),
    LayerCase(WordPieceTokenizer, lambda tmp: WordPieceTokenizer(_vocab_file(tmp)), TEXTS,
              (3, None), expected_output=TEXT_IDS, trainable_weights=0, non_trainable_weights=0,
              mixed_output_dtype="int32", mixed_policy="string",
              skip={"fit_step": NO_WEIGHTS_TO_FIT, "sequence_length": WHOLE_TEXTS}),
    LayerCase(ClassificationPreprocessor,
              lambda tmp: ClassificationPreprocessor(WordPieceTokenizer(_vocab_file(tmp)),
                                                     max_seq_length=5),
              TEXTS, (3, None),
              # [CLS]=2 ... [SEP]=3; "a great movie !" keeps its head "a" and tail "movie !"
              expected_output=[[2, 5, 7, 8, 3], [2, 9, 10, 11, 3], [2, 12, 3]],
              trainable_weights=0, non_trainable_weights=0,
              mixed_output_dtype="int32", mixed_policy="string",
              skip={"fit_step": NO_WEIGHTS_TO_FIT, "sequence_length": WHOLE_TEXTS}),
    ObjectCase(ElectraAdamW, lambda tmp: run_optimizer_checks(_electra_adamw, tmp, ElectraAdamW),
               skip=OPTIMIZER_SKIPS),
    ObjectCase(LayerwiseAdamW,
               lambda tmp: run_optimizer_checks(_layerwise_adamw, tmp, LayerwiseAdamW),
               skip=OPTIMIZER_SKIPS),
    ObjectCase(BFloat16MatmulPolicy,
               lambda tmp: run_dtype_policy_checks(BFloat16MatmulPolicy(), tmp),
               skip={"symbolic_call": NOT_A_LAYER, "weight_counts": "no weights: a policy",
                     "fit_step": "nothing to train; every layer case takes a bfloat16_matmul "
                                 "forward pass, and tests/test_bfloat16_matmul.py trains under it",
                     "mixed_bfloat16": "a precision of its own, beside Keras' mixed policies",
                     "mixed_matches_float32": "a precision of its own, beside Keras' mixed "
                                              "policies",
                     "sequence_length": "no sequence"}),
    ObjectCase(WarmupLinearDecay,
               # peak * min(1, step / 4) * max(0, 1 - step / 10)
               lambda tmp: run_schedule_checks(WarmupLinearDecay(1e-3, 4, 10),
                                               {0: 0.0, 2: 4e-4, 4: 6e-4, 10: 0.0, 12: 0.0}, tmp),
               skip=SCHEDULE_SKIPS),
]


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_harness(case, tmp_path):
    run_case(case, tmp_path)


# ------------------------------------------------------------------ coverage of the registry


def registered_classes(package: str = "electra_tf") -> dict:
    """{registered name: class} of every class `package` registers with
    `keras.saving.register_keras_serializable(package=...)`, after importing all its modules
    (a class is registered when its module is imported)."""
    root = importlib.import_module(package)
    for module in pkgutil.walk_packages(root.__path__, f"{package}."):
        if module.name.rsplit(".", 1)[-1] != "__main__":  # importing it would run the CLI
            importlib.import_module(module.name)
    return {name: obj for name, obj in keras.saving.get_custom_objects().items()
            if name.startswith(f"{package}>")}


def classes_without_case(registered, cases) -> list:
    """Registered names (`"electra_tf>Name"`) that no case covers."""
    covered = {keras.saving.get_registered_name(case.cls) for case in cases}
    return sorted(set(registered) - covered)


def test_every_registered_class_has_a_harness_case():
    """A class registered for `.keras` files must pass the harness: adding one without a case
    (or renaming one) fails here with its name."""
    registered = registered_classes(electra_tf.__name__)
    assert registered, "found no registered classes: has the registration prefix changed?"
    missing = classes_without_case(registered, CASES)
    assert not missing, (f"registered classes without a harness case: {missing}; add a "
                         "LayerCase or ObjectCase to CASES in tests/test_harness_cases.py")
    # And the other way round: every case's class is one `.keras` loading finds by name.
    stale = sorted({keras.saving.get_registered_name(case.cls) for case in CASES}
                   - set(registered))
    assert not stale, f"harness cases for classes that are not registered: {stale}"
    ids = [case_id(case) for case in CASES]
    assert len(ids) == len(set(ids)), "two cases share a test id"


def test_the_registry_check_names_a_new_class():
    @keras.saving.register_keras_serializable(package="electra_tf")
    class Unharnessed(keras.layers.Layer):
        pass

    try:
        assert classes_without_case(registered_classes(), CASES) == ["electra_tf>Unharnessed"]
    finally:  # the registry is global: later tests must not see the class
        del keras.saving.get_custom_objects()["electra_tf>Unharnessed"]


def test_every_case_runs_or_explains_each_check(tmp_path):
    """Skips name real checks and give reasons, and a case that neither runs nor skips a check
    fails."""
    for case in CASES:
        assert set(case.skip) <= set(CHECKS), (case_id(case), sorted(case.skip))
        assert all(len(reason) > 10 for reason in case.skip.values()), case_id(case)
    silent = ObjectCase(WarmupLinearDecay, lambda tmp: {"build_call"})
    with pytest.raises(AssertionError, match="neither run nor skipped: .*config_round_trip"):
        run_case(silent, tmp_path)
    unexplained = ObjectCase(WarmupLinearDecay, lambda tmp: set(CHECKS) - {"fit_step"},
                             skip={"fit_step": " "})
    with pytest.raises(AssertionError, match="without a reason"):
        run_case(unexplained, tmp_path)


def test_the_mixed_policy_is_restored_when_a_check_fails():
    before = keras.config.dtype_policy().name
    with pytest.raises(RuntimeError):
        with global_dtype_policy("mixed_bfloat16"):
            assert keras.config.dtype_policy().name == "mixed_bfloat16"
            raise RuntimeError("a check failed")
    assert keras.config.dtype_policy().name == before
