'use strict';
// TarsTest.Payload from testkit/tars/Interop.tars, for @tars/stream 2.0.3.
//
// Hand-written: the official generator (tars2node) is not published on npm. This follows the
// struct contract tars2node generates (checked against tars2node 20200707's output for
// Interop.tars, see interop/tars/README.md): a constructor holding every member's default,
// static `_classname` / `_write` / `_read` / `_readFrom` / `new` / `create`, and
// `prototype._writeTo` / `_equal` / `_genKey` / `toObject` / `readFromObject` / `toBinBuffer`.
// Like tars2node, `_writeTo` writes every member (optional ones included, whatever their
// value); `_readFrom` requires the `require` members and takes defaults for absent optional
// ones.
//
//   struct Payload {
//       0 require int id;                  1 optional string name;
//       2 optional vector<int> values;     3 optional map<string, string> tags;
//       4 optional vector<string> words;   5 optional map<string, long> counts;
//       6 optional double ratio;           7 optional bool flag;
//   };

const assert = require('assert');
const TarsStream = require('@tars/stream');

const _hasOwnProperty = Object.prototype.hasOwnProperty;

const TarsTest = {};
module.exports.TarsTest = TarsTest;

TarsTest.Payload = function () {
    this.id = 0;
    this.name = '';
    this.values = new TarsStream.List(TarsStream.Int32);
    this.tags = new TarsStream.Map(TarsStream.String, TarsStream.String);
    this.words = new TarsStream.List(TarsStream.String);
    this.counts = new TarsStream.Map(TarsStream.String, TarsStream.Int64);
    this.ratio = 0;
    this.flag = false;
    this._classname = 'TarsTest.Payload';
};
TarsTest.Payload._classname = 'TarsTest.Payload';
TarsTest.Payload._write = function (os, tag, value) { os.writeStruct(tag, value); };
TarsTest.Payload._read = function (is, tag, def) { return is.readStruct(tag, true, def); };
TarsTest.Payload._readFrom = function (is) {
    const tmp = new TarsTest.Payload();
    tmp.id = is.readInt32(0, true, 0);
    tmp.name = is.readString(1, false, '');
    tmp.values = is.readList(2, false, TarsStream.List(TarsStream.Int32));
    tmp.tags = is.readMap(3, false, TarsStream.Map(TarsStream.String, TarsStream.String));
    tmp.words = is.readList(4, false, TarsStream.List(TarsStream.String));
    tmp.counts = is.readMap(5, false, TarsStream.Map(TarsStream.String, TarsStream.Int64));
    tmp.ratio = is.readDouble(6, false, 0);
    tmp.flag = is.readBoolean(7, false, false);
    return tmp;
};
TarsTest.Payload.prototype._writeTo = function (os) {
    os.writeInt32(0, this.id);
    os.writeString(1, this.name);
    os.writeList(2, this.values);
    os.writeMap(3, this.tags);
    os.writeList(4, this.words);
    os.writeMap(5, this.counts);
    os.writeDouble(6, this.ratio);
    os.writeBoolean(7, this.flag);
};
TarsTest.Payload.prototype._equal = function () {
    assert.fail('this structure not define key operation');
};
TarsTest.Payload.prototype._genKey = function () {
    if (!this._proto_struct_name_) {
        this._proto_struct_name_ = 'STRUCT' + Math.random();
    }
    return this._proto_struct_name_;
};
TarsTest.Payload.prototype.toObject = function () {
    return {
        id: this.id,
        name: this.name,
        values: this.values.toObject(),
        tags: this.tags.toObject(),
        words: this.words.toObject(),
        counts: this.counts.toObject(),
        ratio: this.ratio,
        flag: this.flag,
    };
};
TarsTest.Payload.prototype.readFromObject = function (json) {
    _hasOwnProperty.call(json, 'id') && (this.id = json.id);
    _hasOwnProperty.call(json, 'name') && (this.name = json.name);
    _hasOwnProperty.call(json, 'values') && this.values.readFromObject(json.values);
    _hasOwnProperty.call(json, 'tags') && this.tags.readFromObject(json.tags);
    _hasOwnProperty.call(json, 'words') && this.words.readFromObject(json.words);
    _hasOwnProperty.call(json, 'counts') && this.counts.readFromObject(json.counts);
    _hasOwnProperty.call(json, 'ratio') && (this.ratio = json.ratio);
    _hasOwnProperty.call(json, 'flag') && (this.flag = json.flag);
    return this;
};
TarsTest.Payload.prototype.toBinBuffer = function () {
    const os = new TarsStream.TarsOutputStream();
    this._writeTo(os);
    return os.getBinBuffer();
};
TarsTest.Payload.new = function () {
    return new TarsTest.Payload();
};
TarsTest.Payload.create = function (is) {
    return TarsTest.Payload._readFrom(is);
};
