-- One batch of a DCB query read, forward, in one row as the wire carries it
-- (store/base.EncodedBatch): its count, last position, that event's commit time, and every
-- record framed as protobuf field 1, concatenated. {positions} is the statement of
-- store/_query.positions_sql (the batch's positions, ascending, index ranges only);
-- {field_1} is sqlite/_sql.field_1: the tag and varint length of a record of n bytes, then
-- the record ("||" joins the bytes as they are in a UTF-8 database). The bare created_epoch
-- is that of the row max(position) picked (SQLite's rule for a lone min() or max());
-- group_concat takes the rows in the order the subquery gives them, by position, and says
-- so where SQLite can ({in_order}: " ORDER BY position" from SQLite 3.44 on, else "").
SELECT count(*), max(position), created_epoch, CAST(group_concat({field_1}, ''{in_order}) AS BLOB)
FROM (SELECT position, created_epoch, record, length(record) AS n FROM events
      WHERE position IN ({positions}) ORDER BY position)
