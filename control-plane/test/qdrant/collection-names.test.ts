/**
 * Collection templates and physical names: LANEKEEPER_COLLECTION_TEMPLATES is validated with
 * errors that name the entry and field, and the tenant-to-physical mapping is reversible and
 * collision-free for every valid tenant id and template name (property-tested).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CollectionTemplatesError,
  DEFAULT_COLLECTION_TEMPLATES,
  InvalidTenantIdError,
  parseCollectionTemplates,
  parseTenantCollectionName,
  physicalCollectionName,
} from '../../src/stores/qdrant.js';

describe('parseCollectionTemplates', () => {
  it('gives the default documents template when the variable is unset or blank', () => {
    expect(parseCollectionTemplates(undefined)).toEqual([
      { name: 'documents', size: 1536, distance: 'Cosine' },
    ]);
    expect(parseCollectionTemplates('  ')).toEqual([...DEFAULT_COLLECTION_TEMPLATES]);
  });

  it('accepts a list of named templates', () => {
    const json =
      '[{"name":"documents","size":768,"distance":"Dot"},{"name":"faq_v2","size":3,"distance":"Euclid"}]';
    expect(parseCollectionTemplates(json)).toEqual([
      { name: 'documents', size: 768, distance: 'Dot' },
      { name: 'faq_v2', size: 3, distance: 'Euclid' },
    ]);
  });

  it.each([
    ['not json', 'not valid JSON'],
    ['{}', 'non-empty JSON array'],
    ['[]', 'non-empty JSON array'],
    ['[3]', '[0]: expected an object'],
    ['[{"name":"Docs","size":4,"distance":"Cosine"}]', '[0].name'],
    ['[{"name":"tenant_x","size":4,"distance":"Cosine"}]', 'reserved for physical names'],
    ['[{"name":"lanekeeper_x","size":4,"distance":"Cosine"}]', 'reserved for physical names'],
    ['[{"name":"a/b","size":4,"distance":"Cosine"}]', '[0].name'],
    ['[{"name":"d","size":0,"distance":"Cosine"}]', '[0].size'],
    ['[{"name":"d","size":1.5,"distance":"Cosine"}]', '[0].size'],
    [
      '[{"name":"d","size":4,"distance":"cosine"}]',
      '[0].distance: expected one of Cosine, Euclid, Dot, Manhattan',
    ],
    ['[{"name":"d","size":4,"distance":"Dot","extra":1}]', '[0].extra: unknown field'],
    [
      '[{"name":"d","size":4,"distance":"Dot"},{"name":"d","size":4,"distance":"Dot"}]',
      '[1].name: duplicate',
    ],
  ])('refuses %s with a message naming the problem', (json, message) => {
    expect(() => parseCollectionTemplates(json)).toThrow(CollectionTemplatesError);
    expect(() => parseCollectionTemplates(json)).toThrow(message);
  });
});

const tenantId = fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,62}$/);
const templateName = fc
  .stringMatching(/^[a-z0-9][a-z0-9_-]{0,62}$/)
  .filter((n) => !n.startsWith('tenant_') && !n.startsWith('lanekeeper_'));

describe('physical collection names', () => {
  it('map a tenant and template to tenant_{id}_{name} or lanekeeper_{name}', () => {
    expect(physicalCollectionName('collection', 'acme-eu', 'documents')).toBe('tenant_acme-eu_documents');
    expect(physicalCollectionName('partition', 'acme-eu', 'documents')).toBe('lanekeeper_documents');
  });

  it('refuse tenant ids that could make names collide or escape', () => {
    for (const bad of ['a_b', '', 'A', '../x', 'a/b', '-a']) {
      expect(() => physicalCollectionName('collection', bad, 'documents')).toThrow(InvalidTenantIdError);
    }
  });

  it('reverse to the same tenant and name for every valid pair', () => {
    fc.assert(
      fc.property(tenantId, templateName, (tenant, name) => {
        expect(parseTenantCollectionName(physicalCollectionName('collection', tenant, name))).toEqual({
          tenant,
          name,
        });
      }),
    );
  });

  it('never give two different pairs the same name', () => {
    fc.assert(
      fc.property(tenantId, templateName, tenantId, templateName, (t1, n1, t2, n2) => {
        fc.pre(t1 !== t2 || n1 !== n2);
        expect(physicalCollectionName('collection', t1, n1)).not.toBe(
          physicalCollectionName('collection', t2, n2),
        );
      }),
    );
  });

  it('do not parse names outside the tenant scheme', () => {
    for (const name of [
      'lanekeeper_documents',
      'tenant_',
      'tenant__x',
      'tenant_a',
      'documents',
      'tenant_A_x',
    ]) {
      expect(parseTenantCollectionName(name)).toBeUndefined();
    }
  });
});
