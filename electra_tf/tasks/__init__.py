"""Fine-tuning tasks: each shape of task (`base.FinetuningTask`) says how its data is read and
turned into features, which head, loss and metrics it trains, how outputs become predictions
and scores, and what its export serves. `finetune`, `evaluate` and `export` ask the task named
by the config's `task.type`."""

from electra_tf.errors import ConfigError
from electra_tf.tasks.base import FinetuningTask
from electra_tf.tasks.classification import SequenceClassification
from electra_tf.tasks.question_answering import QuestionAnswering
from electra_tf.tasks.regression import TextRegression
from electra_tf.tasks.tagging import TokenClassification

TASKS: dict[str, type[FinetuningTask]] = {
    SequenceClassification.type: SequenceClassification,
    TextRegression.type: TextRegression,
    TokenClassification.type: TokenClassification,
    QuestionAnswering.type: QuestionAnswering,
}


def get_task(task_config) -> FinetuningTask:
    """The task object for a config's `task` section (its `type`)."""
    kind = task_config.task_type
    if kind not in TASKS:
        raise ConfigError(f"task.type {kind!r} is not a fine-tuning task electra_tf knows; choose "
                          f"one of {sorted(TASKS)}.")
    return TASKS[kind](task_config)


__all__ = ["TASKS", "FinetuningTask", "QuestionAnswering", "SequenceClassification",
           "TextRegression", "TokenClassification", "get_task"]
