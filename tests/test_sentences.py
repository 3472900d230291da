"""Hand-written hard cases for the rationale sentence splitter."""

import pytest

from align.text.sentences import split_sentences

CASES = [
    ("Plants need light. They make food.", ["Plants need light.", "They make food."]),
    ("Mr. Smith went home. He slept.", ["Mr. Smith went home.", "He slept."]),
    ("Dr. Lee and Mrs. Park met. They talked.", ["Dr. Lee and Mrs. Park met.", "They talked."]),
    ("Use a tool, e.g. a hammer. Then stop.", ["Use a tool, e.g. a hammer.", "Then stop."]),
    ("Some metals, i.e. iron, rust. Gold does not.", ["Some metals, i.e. iron, rust.", "Gold does not."]),
    ("The U.S. has fifty states. Texas is one.", ["The U.S. has fifty states.", "Texas is one."]),
    ("It weighs 1.9 kg. That is heavy.", ["It weighs 1.9 kg.", "That is heavy."]),
    ("The value is 3.14159 exactly. Use it.", ["The value is 3.14159 exactly.", "Use it."]),
    ("1. Mix the water. 2. Heat it.", ["1. Mix the water.", "2. Heat it."]),
    ("Steps: 1. Mix. 2. Heat. 3. Cool.", ["Steps: 1. Mix.", "2. Heat.", "3. Cool."]),
    ("The answer is 3. Then we add 2.", ["The answer is 3.", "Then we add 2."]),
    ('He said, "Stop." Then he left.', ['He said, "Stop."', "Then he left."]),
    ('"Stop!" she said. He stopped.', ['"Stop!" she said.', "He stopped."]),
    ("Is it alive? Yes, it grows.", ["Is it alive?", "Yes, it grows."]),
    ("Wow! That is fast.", ["Wow!", "That is fast."]),
    ("This sentence has no end", ["This sentence has no end"]),
    ("First one. Second one has no end", ["First one.", "Second one has no end"]),
    ("", []),
    ("   ", []),
    ("A single sentence.", ["A single sentence."]),
    ("J. K. Rowling wrote books. They sold well.", ["J. K. Rowling wrote books.", "They sold well."]),
    ("Take vitamin C. It helps.", ["Take vitamin C.", "It helps."]),
    ("Mt. Everest is tall. It is in Asia.", ["Mt. Everest is tall.", "It is in Asia."]),
    ("Bring pens, paper, etc. We will write.", ["Bring pens, paper, etc.", "We will write."]),
    ("Bring pens, paper, etc. and books.", ["Bring pens, paper, etc. and books."]),
    ("It starts at 9 a.m. and ends at noon.", ["It starts at 9 a.m. and ends at noon."]),
    ("It ends at 5 p.m. Then we rest.", ["It ends at 5 p.m.", "Then we rest."]),
    ("See Fig. 2 for details. It shows a graph.", ["See Fig. 2 for details.", "It shows a graph."]),
    ("Wait... Then it moved.", ["Wait...", "Then it moved."]),
    ("Wait... it moved.", ["Wait... it moved."]),
    ("Really?! Yes.", ["Really?!", "Yes."]),
    ("(This is an aside.) Next sentence.", ["(This is an aside.)", "Next sentence."]),
    ("Line one\nLine two", ["Line one", "Line two"]),
    ("Para one.\n\nPara two.", ["Para one.", "Para two."]),
    ("The answer is (B). It fits.", ["The answer is (B).", "It fits."]),
    ("Smith et al. found it. They were right.", ["Smith et al. found it.", "They were right."]),
    (
        "Water boils at 100 \u00b0C. Ice melts at 0 \u00b0C.",
        ["Water boils at 100 \u00b0C.", "Ice melts at 0 \u00b0C."],
    ),
    ("Its mass is 2.5e3 kg. Big.", ["Its mass is 2.5e3 kg.", "Big."]),
    ("Visit www.example.com today. It is free.", ["Visit www.example.com today.", "It is free."]),
    ("The ratio is 1:2. So add more.", ["The ratio is 1:2.", "So add more."]),
    ("The cat sat.  The dog ran.", ["The cat sat.", "The dog ran."]),
    ("The U.S. Army trained. It grew.", ["The U.S. Army trained.", "It grew."]),
    ("He scored 10. 20 people cheered.", ["He scored 10.", "20 people cheered."]),
    ("Prof. Ada Lovelace wrote notes. They mattered.", ["Prof. Ada Lovelace wrote notes.", "They mattered."]),
    ("\u201cHello.\u201d She waved.", ["\u201cHello.\u201d", "She waved."]),
    (
        "A magnet attracts iron. A magnet repels a like pole. A magnet attracts iron.",
        ["A magnet attracts iron.", "A magnet repels a like pole.", "A magnet attracts iron."],
    ),
    (
        "Solution: The force is 9.8 N. So the answer is (A)",
        ["Solution: The force is 9.8 N.", "So the answer is (A)"],
    ),
    ("it is lower case. but still split? no.", ["it is lower case. but still split? no."]),
    ("He lives in the U.S. He likes it.", ["He lives in the U.S.", "He likes it."]),
    ("She moved to the U.S. in 1990. She was 9.", ["She moved to the U.S. in 1990.", "She was 9."]),
    ("The No. 1 team won. They cheered.", ["The No. 1 team won.", "They cheered."]),
    ("Is it true? No. It is false.", ["Is it true?", "No.", "It is false."]),
    ("It costs $3.50. Buy two.", ["It costs $3.50.", "Buy two."]),
    ("Version 3.10 is out. Try it.", ["Version 3.10 is out.", "Try it."]),
    # units and references that double as titles end a sentence in lower case
    ("The rope is 11.5 ft. Magnets attract.", ["The rope is 11.5 ft.", "Magnets attract."]),
    ("The peak is 8848 mt. It is high.", ["The peak is 8848 mt.", "It is high."]),
    ("It is 3 st. Weigh it again.", ["It is 3 st.", "Weigh it again."]),
    ("The mass is approx. Ten grams is close.", ["The mass is approx.", "Ten grams is close."]),
    ("The mass is approx. ten grams.", ["The mass is approx. ten grams."]),
    ("See the plot in fig. It shows a line.", ["See the plot in fig.", "It shows a line."]),
    ("Read it in vol. The end is sad.", ["Read it in vol.", "The end is sad."]),
    ("St. Louis is a city. It is big.", ["St. Louis is a city.", "It is big."]),
    ("Ft. Worth is in Texas. It is hot.", ["Ft. Worth is in Texas.", "It is hot."]),
    ("See Vol. 3 and Fig. 4 for it. Done.", ["See Vol. 3 and Fig. 4 for it.", "Done."]),
    ("Use Eq. 2 here. It is linear.", ["Use Eq. 2 here.", "It is linear."]),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_split_sentences_hard_cases(text, expected):
    assert [s.text for s in split_sentences(text)] == expected


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_sentence_spans_point_into_source(text, expected):
    for sentence in split_sentences(text):
        assert text[sentence.start : sentence.end] == sentence.text
        assert sentence.text == sentence.text.strip()


def test_spans_are_ordered_and_disjoint():
    text = "One. Two? Three! Four"
    spans = [(s.start, s.end) for s in split_sentences(text)]
    assert spans == [(0, 4), (5, 9), (10, 16), (17, 21)]


def test_ordinary_words_are_not_abbreviations():
    text = "Is the sun a planet? The answer is no. The sun is a star."
    assert [s.text for s in split_sentences(text)] == [
        "Is the sun a planet?",
        "The answer is no.",
        "The sun is a star.",
    ]
