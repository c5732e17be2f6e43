import test from 'ava';
import { isRole, roleAllows } from './operator-tokens.ts';

test('roles are ordered viewer < runner < deployer < admin', (t) => {
  t.true(roleAllows('runner', 'viewer'));
  t.false(roleAllows('runner', 'deployer'));
  t.true(roleAllows('deployer', 'runner'));
  t.false(roleAllows('viewer', 'runner'));
  t.true(roleAllows('admin', 'deployer'));
  t.true(roleAllows('deployer', 'viewer'));
  t.true(roleAllows('viewer', 'viewer'));
  t.false(roleAllows('viewer', 'deployer'));
  t.false(roleAllows('deployer', 'admin'));
  t.true(isRole('admin'));
  t.false(isRole('root'));
});
