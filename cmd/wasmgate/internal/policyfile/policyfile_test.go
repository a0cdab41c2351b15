package policyfile

import (
	"testing"
)

func TestToJSON(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{name: "json unchanged", in: ` {"routes": [ {} ]}`, want: ` {"routes": [ {} ]}`},
		{name: "key order kept", in: "routes:\n- name: b\n  headers: {request: {set: {x-b: '1', x-a: '2'}}}\n",
			want: `{"routes":[{"name":"b","headers":{"request":{"set":{"x-b":"1","x-a":"2"}}}}]}`},
		{name: "yaml 1.2 booleans", in: "a: on\nb: yes\nc: true\nd: No\n", want: `{"a":"on","b":"yes","c":true,"d":"No"}`},
		{name: "numbers as written", in: "a: 1.5\nb: 1e3\nc: 0x1F\nd: 1_000\ne: 99999999999999999999\n",
			want: `{"a":1.5,"b":1e3,"c":31,"d":1000,"e":99999999999999999999}`},
		{name: "yaml flow mapping", in: "{routes: [{name: a}]}", want: `{"routes":[{"name":"a"}]}`},
		{name: "duplicate keys kept for the parser to refuse by path", in: "a: 1\na: 2\n", want: `{"a":1,"a":2}`},
		{name: "null and alias", in: "a: &x {b: ~}\nc: *x\n", want: `{"a":{"b":null},"c":{"b":null}}`},
		{name: "quoted strings stay strings", in: "a: '90'\nb: \"<&>\"\n", want: `{"a":"90","b":"\u003c\u0026\u003e"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ToJSON([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestToJSON_Errors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{name: "two documents", in: "a: 1\n---\nb: 2\n", want: "policy: line 2: a second YAML document; a policy is one document"},
		{name: "empty", in: "", want: "policy: not valid YAML: EOF"},
		{name: "infinity", in: "a: .inf\n", want: `policy: line 1: ".inf" is not a number JSON can hold`},
		{name: "merge key", in: "a: &x {b: 1}\nc: {<<: *x}\n", want: "policy: line 2: keys must be plain strings"},
		{name: "syntax", in: "a: [1\n", want: "policy: not valid YAML: yaml: line 1: did not find expected ',' or ']'"},
		{name: "broken json", in: "{\"routes\": [\n  {\"name\": \"a\"\n]}", want: "policy: not valid JSON: line 3: invalid character ']' after object key:value pair"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ToJSON([]byte(tc.in))
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error = %v, want %s", err, tc.want)
			}
		})
	}
}
