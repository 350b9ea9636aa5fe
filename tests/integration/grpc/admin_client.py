#!/usr/bin/python3
"""Admin API client for switchyard's integration tests (grpc_admin.test.mjs).

Runs a list of Admin RPCs in order against a running gateway and prints one
JSON object: {"ok": true, "results": [{"code", "details", "resp"}...]}, where
resp is the response as a dict (proto field names, defaults included) or,
for the server-streaming ExportDataset, {"lines": [...]}. Every RPC has a
deadline, so a hang shows as DEADLINE_EXCEEDED rather than a stuck test.

usage: admin_client.py --target HOST:PORT --stubs DIR --calls JSON
  JSON: [{"method": "Promote", "req": {...}, "token": "..." (optional),
          "timeout": 10 (optional)}, ...]
  --token T    default token for calls that name none ("" = send none)
  --raw PATH   instead of the calls: call an unknown method PATH
"""
import argparse
import json
import sys
import time

import grpc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--target', required=True)
    ap.add_argument('--stubs', required=True)
    ap.add_argument('--calls', default='[]')
    ap.add_argument('--token', default='')
    ap.add_argument('--raw', default='')
    a = ap.parse_args()
    sys.path.insert(0, a.stubs)
    from google.protobuf import json_format
    from switchyard.v1 import admin_pb2, admin_pb2_grpc

    ch = grpc.insecure_channel(a.target)
    if a.raw:
        m = ch.unary_unary(a.raw, request_serializer=lambda b: b,
                           response_deserializer=lambda b: b)
        t0 = time.monotonic()
        try:
            m(b'', metadata=[('authorization', 'Bearer ' + a.token)], timeout=5)
            res = {'code': 'OK', 'details': ''}
        except grpc.RpcError as e:
            res = {'code': e.code().name, 'details': e.details()}
        res['elapsed'] = time.monotonic() - t0
        print(json.dumps({'ok': True, 'results': [res]}))
        return

    stub = admin_pb2_grpc.AdminStub(ch)
    svc = admin_pb2.DESCRIPTOR.services_by_name['Admin']
    out = []
    for c in json.loads(a.calls):
        meth = svc.methods_by_name[c['method']]
        req_cls = getattr(admin_pb2, meth.input_type.name)
        req = json_format.ParseDict(c.get('req', {}), req_cls())
        token = c.get('token', a.token)
        md = [('authorization', 'Bearer ' + token)] if token else []
        fn = getattr(stub, c['method'])
        t0 = time.monotonic()
        try:
            if meth.server_streaming:
                lines = [json_format.MessageToDict(m, preserving_proto_field_name=True,
                                                   including_default_value_fields=True)
                         for m in fn(req, metadata=md, timeout=c.get('timeout', 20))]
                resp = {'lines': lines}
            else:
                r = fn(req, metadata=md, timeout=c.get('timeout', 20))
                resp = json_format.MessageToDict(r, preserving_proto_field_name=True,
                                                 including_default_value_fields=True)
            res = {'code': 'OK', 'details': '', 'resp': resp}
        except grpc.RpcError as e:
            res = {'code': e.code().name, 'details': e.details() or '', 'resp': None}
        res['ms'] = (time.monotonic() - t0) * 1000
        out.append(res)
    print(json.dumps({'ok': True, 'results': out}))


if __name__ == '__main__':
    main()
