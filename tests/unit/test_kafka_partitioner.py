"""Durable producers partition keyed records exactly as aiokafka's (and Java's) default
partitioner does, with a faster murmur2: a key never moves to another partition."""

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given, settings
from hypothesis import strategies as st

from rapport.shared.kafka import key_partitioner, murmur2


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=100))
def test_murmur2_is_kafkas(key):
    assert murmur2(key) == aiokafka_murmur2(key)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=64), st.integers(min_value=1, max_value=64))
def test_keyed_records_go_where_the_default_partitioner_sends_them(key, partitions):
    every = list(range(partitions))
    assert key_partitioner(key, every, every[:1]) == DefaultPartitioner()(key, every, every[:1])


def test_unkeyed_records_go_to_an_available_partition():
    assert {key_partitioner(None, [0, 1, 2, 3], [2]) for _ in range(20)} == {2}
    assert key_partitioner(None, [0, 1], []) in (0, 1)
