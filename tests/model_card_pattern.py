"""The whole model card of the shared tiny run (tests/test_card.py), metadata and sections in order, as one regex
(setfit style): any unplanned change to the card fails ``fullmatch``."""

import re

# setfit style: the whole card, metadata and sections, in order.
CARD_PATTERN = re.compile(
    r"""---
datasets:
- (?P<dataset_repo>\S+-activekd-data)
library_name: transformers
pipeline_tag: text-classification
tags:
- hf-activekd
- knowledge-distillation
- synthetic-data
model-index:
- name: (?P<name>\S+)
  results:
  - task:
      type: text-classification
      name: Text Classification
    dataset:
      name: validation set
      type: custom
      split: validation
    metrics:
    - type: accuracy
      value: [\d.]+
      name: Accuracy \(final\)
    - type: f1
      value: [\d.]+
      name: Macro-F1 \(final\)
      config: macro
    - type: accuracy
      value: [\d.]+
      name: Accuracy \(best, round \d+\)
    - type: f1
      value: [\d.]+
      name: Macro-F1 \(best, round \d+\)
      config: macro
---

# (?P=name)

A text classifier over 4 classes, trained with active knowledge distillation from """
    r"""`pool-simulation` \(PoolTeacher\), a \*\*simulation\*\* \(real held-back examples, no LLM\)\.

<!-- hf-activekd:start -->
## Active knowledge distillation

.*
- \*\*Rounds:\*\* (?P<rounds>\d+) evaluations, \d+ with teacher requests\.
- \*\*Generated rows accepted:\*\* (?P<accepted>\d+) of \d+ requested\.
- \*\*Teacher tokens:\*\* 0 in, 0 out\.
- \*\*Validation:\*\* accuracy [\d.]+ → [\d.]+, macro-F1 [\d.]+ → [\d.]+ \(round 0 → \d+\)\.
- \*\*Best round:\*\* \d+ \(step \d+\), macro_f1 = [\d.]+\.
.*- \*\*Weights in this repository:\*\* the weights at the end of training \(step \d+\).*

### Teacher

- \*\*Teacher:\*\* `pool-simulation` \(PoolTeacher\), a \*\*simulation\*\*.*

### Key configuration

\| Setting \| Value \|
\| --- \| --- \|
.*\| `samples_per_round` \| 8 \|
.*\| `allocation` \| guided \|
.*\| `patience` \| 0 \|
.*\| `mix_mode` \| append \|
.*
### Rounds

\| Round \| Step \| Eval loss \| Accuracy \| Macro-F1 \| Requested \| Accepted \| Dropped \(by reason\) """
    r"""\| Tokens in \| Tokens out \| Wall time \(s\) \|
\|( --- \|){11}
(?P<table>(\| \d+( ★)? \| \d+ \| \d\.\d{4} \| \d\.\d{4} \| \d\.\d{4} \| [^\n]+ \|\n)+)
★ marks the best round by `macro_f1`\..*

!\[Metrics and samples per round\]\(activekd_rounds\.png\)

### Per-class F1, first and last round

\| Class \| F1, round 0 \| F1, round \d+ \| Change \| Generated rows \|
\| --- \| --- \| --- \| --- \| --- \|
(\| (sports|politics|science|cooking) \| [\d.]+ \| [\d.]+ \| [+-][\d.]+ \| \d+ \|\n){4}
### Generated examples

Up to 3 per round \(shortened\):

\| Round \| Label \| Text \| Requested because \|
\| --- \| --- \| --- \| --- \|
(\| \d+ \| \w+ \| [^\n]+ \| [^\n]+ \|\n)+
### Inference latency: student and teacher

- \*\*Student:\*\* [\d.]+ ms per sample, measured on \d+ evaluation samples in batches of 16 on `(?P<device>[\w:]+)`\.
- \*\*Teacher:\*\* [\d.]+ ms per accepted sample .*
- \*\*Ratio \(teacher / student time per sample\):\*\* \*\*[\d.,e+-]+x\*\* \(PGKD reports 130x.*
- The teacher here is a \*\*simulation\*\* .*\*\*not meaningful\*\*\.

### Generated data

The (?P=accepted) accepted generated rows .* \[(?P=dataset_repo)\]\(.*/datasets/(?P=dataset_repo)\).*

### How to reproduce

```python
.*ActiveKDConfig\(
    samples_per_round=8,
.*trainer\.push_to_hub\(\).*
```
.*<!-- hf-activekd:end -->\n?""",
    re.DOTALL,
)
