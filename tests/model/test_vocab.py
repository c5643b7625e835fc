import pytest

from model.vocab import BOS_ID, EOS_ID, PAD_ID, SPECIAL_TOKENS, UNK_ID, UnknownCharactersError, Vocab


def test_special_ids_come_first_and_chars_are_sorted():
    vocab = Vocab.from_texts(["cab", "b a"])
    assert (PAD_ID, BOS_ID, EOS_ID, UNK_ID) == (0, 1, 2, 3)
    assert vocab.chars == (" ", "a", "b", "c")
    assert len(vocab) == len(SPECIAL_TOKENS) + 4
    assert vocab.char_id(" ") == 4


def test_encode_decode_round_trip_and_decode_skips_specials():
    vocab = Vocab.from_texts(["Hey, you."])
    ids = vocab.encode("you, Hey.")
    assert vocab.decode(ids) == "you, Hey."
    assert vocab.decode([BOS_ID, *ids, EOS_ID, PAD_ID]) == "you, Hey."


def test_encode_refuses_unknown_characters_instead_of_shifting_ids():
    vocab = Vocab.from_texts(["abc"])
    with pytest.raises(UnknownCharactersError) as info:
        vocab.encode("abz")
    assert info.value.chars == ["z"]
    assert "'z'" in str(info.value)


def test_replace_policy_uses_obvious_stand_ins():
    vocab = Vocab.from_texts(['it\'s "fine" - ok... cafe'])
    assert (
        vocab.prepare_seed("it\u2019s \u201cfine\u201d \u2014 ok\u2026 caf\u00e9")
        == 'it\'s "fine" - ok... cafe'
    )


def test_replace_policy_falls_back_to_other_case():
    vocab = Vocab.from_texts(["hello"])
    assert vocab.prepare_seed("HELLO") == "hello"


def test_replace_policy_refuses_characters_without_a_stand_in_and_names_them():
    vocab = Vocab.from_texts(["hello "])
    with pytest.raises(UnknownCharactersError) as info:
        vocab.prepare_seed("hello \U0001f600 \u4e16")
    assert info.value.chars == ["\U0001f600", "\u4e16"]
    assert "grinning face" in str(info.value)


def test_many_unknown_characters_are_counted_not_all_named():
    vocab = Vocab.from_texts(["hello "])
    strange = "".join(chr(0x4E00 + i) for i in range(200))  # 200 different CJK ideographs
    with pytest.raises(UnknownCharactersError) as info:
        vocab.prepare_seed("hello " + strange + strange)
    message = str(info.value)
    assert len(info.value.chars) == 200  # the caller still gets every one
    assert message.count("cjk unified ideograph") == 5
    assert "and 195 more (200 different characters in all)" in message
    assert len(message) < 300


def test_drop_policy_drops_what_it_cannot_replace():
    vocab = Vocab.from_texts(["hello "])
    assert vocab.prepare_seed("h\u00e9llo \U0001f600", "drop") == "hello "


def test_refuse_policy_refuses_even_replaceable_characters():
    vocab = Vocab.from_texts(["it's"])
    with pytest.raises(UnknownCharactersError):
        vocab.prepare_seed("it\u2019s", "refuse")
    assert vocab.prepare_seed("it's", "refuse") == "it's"


def test_unknown_policy_name_is_checked():
    with pytest.raises(ValueError):
        Vocab.from_texts(["a"]).prepare_seed("a", "guess")


def test_grow_keeps_every_old_id():
    old = Vocab.from_texts(["abc"])
    new = old.grow(["cabz!"])
    assert new.chars[: len(old.chars)] == old.chars
    for char in "abc":
        assert new.char_id(char) == old.char_id(char)
    assert set(new.chars) == set("abcz!")
    assert old.grow(["cab"]) == old


def test_round_trip_through_a_plain_list():
    vocab = Vocab.from_texts(["xyz 1"])
    assert Vocab.from_list(vocab.to_list()) == vocab
