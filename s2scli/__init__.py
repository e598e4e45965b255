"""s2s: sequence to sequence learning with neural networks (Sutskever et al., 2014) as Unix tools.

The package is a library with a thin command-line interface on top (the ``cli`` package, one module per
command). Data flows one way:

    raw text --vocab--> vocabulary file
    raw text pair --prepare--> prepared file (token ids)
    prepared file --train--> model file
    raw text --translate--> raw text
    hypotheses + references --score--> BLEU / chrF / TER, or model log-probabilities
"""

__version__ = "0.1.0"
