"""Tags: conditions on a customer, written as data, evaluated with an explanation.

The rule language (``conditions``) parses JSON into typed conditions and
refuses a bad one with the JSON path of the bad part; ``facts`` is what a
condition may look at; ``evaluation`` decides a condition against those facts
and says why. Nothing here knows of a store or of GraphQL.
"""
